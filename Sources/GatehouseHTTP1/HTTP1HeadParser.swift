#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Parses complete heads (start line, fields, blank line) strictly, as RFC 9112 asks of a proxy: every
/// line ends in CRLF, no whitespace before a field's colon, no obs-fold, no control characters, and the
/// framing headers must agree. What it accepts can be forwarded without ambiguity (no smuggling).
enum HTTP1HeadParser {
    /// The offset just past the blank line that ends a head (or a trailer section) starting at
    /// `bytes[0]`, or nil if it has not all arrived. `scanned` carries the scan over between calls.
    static func findEnd(_ bytes: UnsafeRawBufferPointer, scanned: inout Int) throws -> Int? {
        var index = scanned
        let count = bytes.count
        guard let base = bytes.baseAddress else { return nil }
        while index < count {
            guard let found = memchr(base + index, Int32(ASCII.lf), count - index) else { break }
            let lf = base.distance(to: UnsafeRawPointer(found))
            // A bare LF is a line ending some parsers accept and others do not: refuse it.
            guard lf > 0, bytes[lf - 1] == ASCII.cr else { throw HTTP1Error.codecError }
            if lf >= 3, bytes[lf - 2] == ASCII.lf { return lf + 1 }
            index = lf + 1
        }
        scanned = count
        return nil
    }

    /// The offset of the LF ending the line that starts at `start` (findEnd has vouched it exists).
    @inline(__always)
    static func lineFeed(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let found = memchr(bytes.baseAddress! + start, Int32(ASCII.lf), bytes.count - start)!
        return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
    }

    // MARK: requests

    static func parseRequest(_ head: ByteBuffer, limits: HTTP1Limits) throws -> RequestHead {
        try head.withUnsafeReadableBytes { bytes in
            let firstLF = lineFeed(in: bytes, from: 0)
            let lineEnd = firstLF - 1
            var index = 0
            while index < lineEnd, ASCII.isTokenChar(bytes[index]) { index += 1 }
            guard index > 0, index < lineEnd, bytes[index] == ASCII.space else { throw HTTP1Error.codecError }
            let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<index]), as: UTF8.self)
            index += 1
            let targetStart = index
            while index < lineEnd, ASCII.isTargetByte(bytes[index]) { index += 1 }
            guard index > targetStart, index < lineEnd, bytes[index] == ASCII.space else { throw HTTP1Error.codecError }
            let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)
            let version = try parseVersion(UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<lineEnd]))

            var facts = FieldFacts()
            let fields = try parseFields(bytes, from: firstLF + 1, limits: limits, facts: &facts)
            let framing: HTTP1BodyFraming
            if facts.transferEncodingCount > 0 {
                // RFC 9112 §6.1: HTTP/1.0 has no chunked coding, and with Content-Length as well the
                // message is a smuggling attempt. Envoy answers both with 400.
                guard version == .http1_1, facts.contentLength == nil else {
                    throw HTTP1Error.malformed(details: "http1.content_length_and_chunked_not_allowed")
                }
                guard facts.onlyChunked else { throw HTTP1Error.unsupportedTransferEncoding }
                framing = .chunked
            } else if let length = facts.contentLength {
                framing = length > 0 ? .contentLength(length) : .none
            } else {
                framing = .none
            }
            return RequestHead(method: method, target: target, version: version,
                                    headers: HTTPHeaderBlock(source: head, fields: fields), framing: framing,
                                    connection: facts.connection, hostCount: facts.hostCount,
                                    expectsContinue: facts.expectsContinue, declaredContentLength: facts.contentLength)
        }
    }

    // MARK: responses

    /// `requestWasHEAD`: a response to HEAD has no body whatever its headers say.
    static func parseResponse(_ head: ByteBuffer, limits: HTTP1Limits, requestWasHEAD: Bool) throws -> HTTP1ResponseHead {
        try head.withUnsafeReadableBytes { bytes in
            let firstLF = lineFeed(in: bytes, from: 0)
            let lineEnd = firstLF - 1
            guard lineEnd >= 12, bytes[8] == ASCII.space else { throw HTTP1Error.codecError }
            let version = try parseVersion(UnsafeRawBufferPointer(rebasing: bytes[0..<8]))
            var status = 0
            for index in 9..<12 {
                let digit = bytes[index] &- 0x30
                guard digit < 10 else { throw HTTP1Error.codecError }
                status = status * 10 + Int(digit)
            }
            guard status >= 100, lineEnd == 12 || bytes[12] == ASCII.space else { throw HTTP1Error.codecError }
            for index in 12..<lineEnd where !ASCII.isFieldValueByte(bytes[index]) { throw HTTP1Error.invalidCharacters }

            var facts = FieldFacts()
            let fields = try parseFields(bytes, from: firstLF + 1, limits: limits, facts: &facts)
            let framing: HTTP1BodyFraming
            if requestWasHEAD || status < 200 || status == 204 || status == 304 {
                framing = .none
            } else if facts.transferEncodingCount > 0 {
                // RFC 9112 §6.3: chunked last means chunked; any other coding runs to the close.
                framing = facts.lastIsChunked ? .chunked : .untilClose
            } else if let length = facts.contentLength {
                framing = length > 0 ? .contentLength(length) : .none
            } else {
                framing = .untilClose
            }
            return HTTP1ResponseHead(version: version, status: status,
                                     headers: HTTPHeaderBlock(source: head, fields: fields), framing: framing,
                                     connection: facts.connection, declaredContentLength: facts.contentLength)
        }
    }

    // MARK: shared

    static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws -> HTTP1Version {
        guard bytes.count == 8 else { throw HTTP1Error.codecError }
        // Case-sensitive: "HTTP" is, per RFC 9112 §2.3.
        guard bytes[0] == 0x48, bytes[1] == 0x54, bytes[2] == 0x54, bytes[3] == 0x50, bytes[4] == 0x2F,
              bytes[5] == 0x31, bytes[6] == 0x2E else { throw HTTP1Error.codecError }
        switch bytes[7] {
        case 0x31: return .http1_1
        case 0x30: return .http1_0
        default: throw HTTP1Error.codecError
        }
    }

    /// Parses the field lines from `start` up to the blank line that ends the block.
    static func parseFields(_ bytes: UnsafeRawBufferPointer, from start: Int, limits: HTTP1Limits,
                            facts: inout FieldFacts) throws -> [HTTPHeaderBlock.Field] {
        var fields: [HTTPHeaderBlock.Field] = []
        fields.reserveCapacity(16)
        var lineStart = start
        while true {
            let lf = lineFeed(in: bytes, from: lineStart)
            let cr = lf - 1
            if cr == lineStart { break }  // the blank line
            var index = lineStart
            // A name must start the line: a leading SP/HTAB is obs-fold, which RFC 9112 §5.2 lets a
            // proxy reject.
            while ASCII.isTokenChar(bytes[index]) { index += 1 }
            guard index > lineStart, bytes[index] == ASCII.colon else { throw HTTP1Error.codecError }
            let nameLength = index - lineStart
            index += 1
            while index < cr, bytes[index] == ASCII.space || bytes[index] == ASCII.tab { index += 1 }
            let valueStart = index
            var valueEnd = index
            while index < cr {
                let byte = bytes[index]
                guard ASCII.isFieldValueByte(byte) else { throw HTTP1Error.invalidCharacters }
                index += 1
                if byte != ASCII.space, byte != ASCII.tab { valueEnd = index }
            }
            let role = HeaderRole.classify(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<(lineStart + nameLength)]))
            if role != .other {
                try facts.observe(role, value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]))
            }
            fields.append(HTTPHeaderBlock.Field(lineStart: Int32(lineStart), nameLength: Int32(nameLength),
                                                valueStart: Int32(valueStart), valueEnd: Int32(valueEnd),
                                                lineEnd: Int32(lf + 1), role: role, removed: false))
            guard fields.count <= limits.maxHeaderCount else { throw HTTP1Error.headersTooLarge }
            lineStart = lf + 1
        }
        return fields
    }
}

/// What the framing and connection headers of one head say, gathered while its fields are parsed.
struct FieldFacts {
    var contentLength: Int64?
    var transferEncodingCount = 0
    var codingCount = 0
    var lastIsChunked = false
    var onlyChunked: Bool { codingCount == 1 && lastIsChunked }
    var connection = ConnectionOptions()
    var hostCount = 0
    var expectsContinue = false

    mutating func observe(_ role: HeaderRole, value: UnsafeRawBufferPointer) throws {
        switch role {
        case .host:
            hostCount += 1
        case .contentLength:
            let length = try Self.parseContentLength(value)
            // Repeated with one value is allowed (RFC 9110 §8.6); differing values are a smuggling vector.
            if let contentLength, contentLength != length {
                throw HTTP1Error.malformed(details: "http1.content_length_not_allowed")
            }
            contentLength = length
        case .transferEncoding:
            transferEncodingCount += 1
            ASCII.forEachListElement(value) { coding in
                codingCount += 1
                lastIsChunked = ASCII.equalsLowercase(coding, "chunked")
            }
        case .connection:
            ASCII.forEachListElement(value) { option in
                if ASCII.equalsLowercase(option, "close") {
                    connection.close = true
                } else if ASCII.equalsLowercase(option, "keep-alive") {
                    connection.keepAlive = true
                } else if ASCII.equalsLowercase(option, "upgrade") {
                    connection.upgrade = true
                } else {
                    connection.namesOtherHeaders = true
                }
            }
        case .expect:
            expectsContinue = ASCII.equalsLowercase(value, "100-continue")
        default:
            break
        }
    }

    static func parseContentLength(_ value: UnsafeRawBufferPointer) throws -> Int64 {
        guard let length = FieldSyntax.contentLength(value) else {
            throw HTTP1Error.malformed(details: "http1.invalid_content_length")
        }
        return length
    }
}
