import GatehouseRateLimit

/// What a Redis server (or anything listening where one should be) sends back. Input: the reply bytes.
/// Invariants: a value read ends within the input; written again and read back it is the same value
/// taking the same bytes; and the same bytes one short are never a whole value.
enum RESPReplyTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        let bytes = Array(data)
        var offset = 0
        // Replies arrive back to back on a pipelined connection: read as many as there are.
        while offset < bytes.count {
            let parsed: (RESPValue, Int)?
            do {
                parsed = try RESPParser.parse(bytes, from: offset)
            } catch {
                return nil
            }
            guard let (value, next) = parsed else { return nil }
            if next <= offset || next > bytes.count { return "a value ending at \(next), read from \(offset) of \(bytes.count)" }
            let again = RESPEncoder.encode(value)
            guard let (reread, end) = try? RESPParser.parse(again, from: 0), reread == value, end == again.count else {
                return "a value that does not read back as itself"
            }
            let short = try? RESPParser.parse(Array(bytes[offset..<(next - 1)]), from: 0)
            if short != nil { return "a value read whole from bytes one short of it" }
            offset = next
        }
        return nil
    }
}
