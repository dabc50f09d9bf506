import NIOCore

/// One piece of a message body, or its end (with trailers, for chunked bodies that have them).
public enum HTTP1BodyEvent: Sendable {
    case data(ByteBuffer)
    case end(HTTPHeaderBlock?)
}

/// Delimits one body in the bytes after its head. Data comes out as slices of the input: nothing is
/// copied, and nothing is held back waiting for a chunk to complete.
struct HTTP1BodyDecoder {
    private enum State {
        case contentLength(remaining: Int64)
        case chunkSize
        case chunkData(remaining: Int64)
        case chunkDataEnd
        case trailers(scanned: Int)
        case untilClose
        case done
    }

    /// A chunk-size line longer than this is an attack, not an extension.
    private static let maxChunkLine = 4096
    private var state: State

    init(framing: HTTP1BodyFraming) {
        switch framing {
        case .none: state = .done
        case .contentLength(let length): state = length > 0 ? .contentLength(remaining: length) : .done
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    var isUntilClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// The next event, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer, limits: HTTP1Limits) throws -> HTTP1BodyEvent? {
        while true {
            switch state {
            case .done:
                return .end(nil)
            case .contentLength(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let length = Int(min(remaining, Int64(buffer.readableBytes)))
                let data = buffer.readSlice(length: length)!
                if remaining == Int64(length) { state = .done } else { state = .contentLength(remaining: remaining - Int64(length)) }
                return .data(data)
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .data(buffer.readSlice(length: buffer.readableBytes)!)
            case .chunkSize:
                guard let size = try readChunkSize(&buffer) else { return nil }
                state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let length = Int(min(remaining, Int64(buffer.readableBytes)))
                let data = buffer.readSlice(length: length)!
                state = remaining == Int64(length) ? .chunkDataEnd : .chunkData(remaining: remaining - Int64(length))
                return .data(data)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw HTTP1Error.codecError }
                state = .chunkSize
            case .trailers(var scanned):
                guard let trailers = try readTrailers(&buffer, scanned: &scanned, limits: limits) else {
                    state = .trailers(scanned: scanned)
                    return nil
                }
                state = .done
                return .end(trailers.isEmpty ? nil : trailers)
            }
        }
    }

    /// `chunk-size [chunk-ext] CRLF`, or nil if the line is incomplete.
    private func readChunkSize(_ buffer: inout ByteBuffer) throws -> Int64? {
        let result: (size: Int64, lineLength: Int)? = try buffer.withUnsafeReadableBytes { bytes in
            guard let lf = try Self.lineEnd(bytes) else {
                if bytes.count > Self.maxChunkLine { throw HTTP1Error.codecError }
                return nil
            }
            let cr = lf - 1
            var index = 0
            var size: Int64 = 0
            while index < cr, let digit = Self.hexValue(bytes[index]) {
                // 15 hex digits already exceed any body anyone will send; more would overflow.
                guard index < 15 else { throw HTTP1Error.codecError }
                size = size << 4 | Int64(digit)
                index += 1
            }
            guard index > 0 else { throw HTTP1Error.codecError }
            // chunk-ext: BWS ";" ... — forwarded nowhere, but it must be well-formed text.
            while index < cr, bytes[index] == ASCII.space || bytes[index] == ASCII.tab { index += 1 }
            if index < cr {
                guard bytes[index] == 0x3B else { throw HTTP1Error.codecError }
                while index < cr {
                    guard ASCII.isFieldValueByte(bytes[index]) else { throw HTTP1Error.codecError }
                    index += 1
                }
            }
            return (size, lf + 1)
        }
        guard let result else { return nil }
        buffer.moveReaderIndex(forwardBy: result.lineLength)
        return result.size
    }

    private mutating func readTrailers(_ buffer: inout ByteBuffer, scanned: inout Int,
                                       limits: HTTP1Limits) throws -> HTTPHeaderBlock? {
        guard buffer.readableBytes >= 2 else { return nil }
        if buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
            return HTTPHeaderBlock()
        }
        let end = try buffer.withUnsafeReadableBytes { try HTTP1HeadParser.findEnd($0, scanned: &scanned) }
        guard let end else {
            if buffer.readableBytes > limits.maxHeadBytes { throw HTTP1Error.headersTooLarge }
            return nil
        }
        guard end <= limits.maxHeadBytes else { throw HTTP1Error.headersTooLarge }
        let section = buffer.readSlice(length: end)!
        var facts = FieldFacts()
        let fields = try section.withUnsafeReadableBytes {
            try HTTP1HeadParser.parseFields($0, from: 0, limits: limits, facts: &facts)
        }
        return HTTPHeaderBlock(source: section, fields: fields)
    }

    /// The offset of the LF that ends the first line, checking it is preceded by CR.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer) throws -> Int? {
        guard let lf = bytes.firstIndex(of: ASCII.lf) else { return nil }
        guard lf > 0, bytes[lf - 1] == ASCII.cr else { throw HTTP1Error.codecError }
        return lf
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
