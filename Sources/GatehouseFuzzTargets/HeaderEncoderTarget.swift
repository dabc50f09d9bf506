import GatehouseHTTP1
import NIOCore

/// The encoder's choke point: a field it writes parses back as exactly that one field (name, trimmed
/// value) and nothing else; a field it refuses is one `FieldSyntax` calls invalid.
///
/// Input: (length, name) then the value as the rest.
enum HeaderEncoderTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        var input = FuzzInput(data)
        let name = input.piece()
        let value = input.rest()
        var out = ByteBuffer()
        let written = name.withUnsafeBytes { name in
            value.withUnsafeBytes { value in HTTP1Encoder.writeField(name, value, into: &out) }
        }
        let valid = name.withUnsafeBytes(FieldSyntax.isValidName) && value.withUnsafeBytes(FieldSyntax.isValidValue)
        guard written == valid else { return "writeField said \(written) for a field FieldSyntax calls valid=\(valid)" }
        guard written else { return nil }
        var wire = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        wire.writeBuffer(&out)
        wire.writeStaticString("\r\n")
        var decoder = HTTP1RequestDecoder(limits: HTTP1Limits(maxHeadBytes: 1 << 20, maxHeaderCount: 10))
        guard case .head(let head)? = try? decoder.next(&wire) else { return "a written field does not parse back" }
        let pairs = head.headers.pairs
        guard pairs.count == 1 else { return "one written field parsed back as \(pairs.count)" }
        guard Array(pairs[0].name.utf8) == name else { return "the name changed" }
        let trimmed = value.withUnsafeBytes { Array(ASCII.trimmingWhitespace($0)) }
        guard Array(pairs[0].value.utf8) == trimmed || pairs[0].value == String(decoding: trimmed, as: UTF8.self) else {
            return "the value changed"
        }
        return nil
    }
}
