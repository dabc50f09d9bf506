import NIOCore

/// Writes HTTP/1.1 start lines, fields and chunk framing into byte buffers. This is the choke point for
/// what goes on an HTTP/1.1 wire: a start line or field that would not parse back exactly as meant (a
/// CR, LF, NUL or other control byte, a name that is not a token, a target with a blank) is refused here
/// and never written, whatever produced it.
public enum HTTP1Encoder {
    /// Writes `METHOD TARGET HTTP/1.1`; false (and nothing written) when the method is not a token or
    /// the target is not visible ASCII.
    @discardableResult
    public static func writeRequestLine(method: String, target: String, into out: inout ByteBuffer) -> Bool {
        guard FieldSyntax.isValidMethod(method), FieldSyntax.isValidTarget(target) else { return false }
        out.writeString(method)
        out.writeInteger(ASCII.space)
        out.writeString(target)
        out.writeStaticString(" HTTP/1.1\r\n")
        return true
    }

    public static func writeStatusLine(status: Int, into out: inout ByteBuffer) {
        out.writeStaticString("HTTP/1.1 ")
        writeDecimal(status, into: &out)
        out.writeInteger(ASCII.space)
        out.writeStaticString(reasonPhrase(status))
        out.writeStaticString("\r\n")
    }

    /// Writes `name: value` with the value's outer blanks trimmed; false (and nothing written) when the
    /// name is not a token or the value holds a control byte.
    @discardableResult
    public static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) -> Bool {
        var name = name
        var value = value
        return name.withUTF8 { name in
            value.withUTF8 { value in
                writeField(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value), into: &out)
            }
        }
    }

    @discardableResult
    public static func writeField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
                                  into out: inout ByteBuffer) -> Bool {
        guard FieldSyntax.isValidName(name), FieldSyntax.isValidValue(value) else { return false }
        out.writeBytes(name)
        out.writeStaticString(": ")
        out.writeBytes(ASCII.trimmingWhitespace(value))
        out.writeStaticString("\r\n")
        return true
    }

    /// A field whose name is a constant of the gateway's; the value is checked as any other.
    @discardableResult
    public static func writeField(_ name: StaticString, _ value: String, into out: inout ByteBuffer) -> Bool {
        var value = value
        return value.withUTF8 { value in
            let value = UnsafeRawBufferPointer(value)
            guard FieldSyntax.isValidValue(value) else { return false }
            out.writeStaticString(name)
            out.writeStaticString(": ")
            out.writeBytes(ASCII.trimmingWhitespace(value))
            out.writeStaticString("\r\n")
            return true
        }
    }

    /// `content-length: N`, in canonical form (no sign, no leading zeros), whatever the peer sent.
    public static func writeContentLength(_ length: Int64, into out: inout ByteBuffer) {
        out.writeStaticString("content-length: ")
        writeDecimal(length, into: &out)
        out.writeStaticString("\r\n")
    }

    /// Decimal digits of a non-negative number, without allocating: made on the stack, then written at
    /// once (a write per digit checked the buffer's capacity each time, which showed in the profile).
    public static func writeDecimal<Number: BinaryInteger>(_ value: Number, into out: inout ByteBuffer) {
        var rest = UInt64(value)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: 20 digits fit
        withUnsafeMutableBytes(of: &digits) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            out.writeBytes(UnsafeRawBufferPointer(rebasing: digits[start...]))
        }
    }

    /// The size line that precedes a chunk of `size` bytes.
    public static func writeChunkHeader(size: Int, into out: inout ByteBuffer) {
        precondition(size >= 0)
        var shift = 0
        while shift + 4 < Int.bitWidth, size >> (shift + 4) != 0 { shift += 4 }
        while shift >= 0 {
            let digit = UInt8((size >> shift) & 0xF)
            out.writeInteger(digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
            shift -= 4
        }
        out.writeStaticString("\r\n")
    }

    /// The last chunk, the trailers if any, and the blank line. Returns how many trailer fields the
    /// encoder refused.
    @discardableResult
    public static func writeLastChunk(trailers: HTTPHeaderBlock?, into out: inout ByteBuffer) -> Int {
        out.writeStaticString("0\r\n")
        let refused = trailers?.write(into: &out) ?? 0
        out.writeStaticString("\r\n")
        return refused
    }

    /// The standard reason phrase (Envoy writes its own, not the upstream's).
    public static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Payload Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Entity"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}
