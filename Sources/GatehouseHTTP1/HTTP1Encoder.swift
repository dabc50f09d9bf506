import NIOCore

/// Writes HTTP/1.1 start lines, fields and chunk framing into byte buffers.
public enum HTTP1Encoder {
    public static func writeRequestLine(method: String, target: String, into out: inout ByteBuffer) {
        out.writeString(method)
        out.writeInteger(ASCII.space)
        out.writeString(target)
        out.writeStaticString(" HTTP/1.1\r\n")
    }

    public static func writeStatusLine(status: Int, into out: inout ByteBuffer) {
        out.writeStaticString("HTTP/1.1 ")
        writeDecimal(status, into: &out)
        out.writeInteger(ASCII.space)
        out.writeStaticString(reasonPhrase(status))
        out.writeStaticString("\r\n")
    }

    public static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }

    public static func writeField(_ name: StaticString, _ value: String, into out: inout ByteBuffer) {
        out.writeStaticString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }

    public static func writeDecimal(_ value: Int, into out: inout ByteBuffer) {
        if value >= 0, value < 10 {
            out.writeInteger(UInt8(0x30 + value))
            return
        }
        out.writeString(String(value))
    }

    /// The size line that precedes a chunk of `size` bytes.
    public static func writeChunkHeader(size: Int, into out: inout ByteBuffer) {
        out.writeString(String(size, radix: 16))
        out.writeStaticString("\r\n")
    }

    /// The last chunk, the trailers if any, and the blank line.
    public static func writeLastChunk(trailers: HTTPHeaderBlock?, into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n")
        trailers?.write(into: &out)
        out.writeStaticString("\r\n")
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
