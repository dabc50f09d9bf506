/// What a header field may look like on the wire, whichever protocol carries it (RFC 9110 §5.1 and
/// §5.5, RFC 9113 §8.2.1). Every field the gateway writes toward a peer passes these checks, whatever
/// its source (a client, a JWT claim, the config or an upstream): where it is encoded
/// (`HTTP1Encoder.writeField`, `appendHTTP2Fields`), or where it enters a header block
/// (`HTTPHeaderBlock.add`; received lines were checked by the strict parser), whose `write(into:)` then
/// copies only checked lines. A field that fails is not written.
public enum FieldSyntax {
    /// A field name is a non-empty token.
    public static func isValidName(_ name: UnsafeRawBufferPointer) -> Bool {
        guard !name.isEmpty else { return false }
        for byte in name where !ASCII.isTokenChar(byte) { return false }
        return true
    }

    /// A field value: visible ASCII, SP, HTAB and obs-text, and no other control byte (NUL, CR, LF, DEL,
    /// 0x01… are what header injection is made of). Leading and trailing blanks are allowed here: the
    /// encoder trims them (HTTP/2 forbids them, HTTP/1.1 ignores them).
    public static func isValidValue(_ value: UnsafeRawBufferPointer) -> Bool {
        for byte in value where !ASCII.isFieldValueByte(byte) { return false }
        return true
    }

    /// A value with no blank at either end, as HTTP/2 requires of what it receives (RFC 9113 §8.2.1).
    public static func isTrimmed(_ value: UnsafeRawBufferPointer) -> Bool {
        guard let first = value.first, let last = value.last else { return true }
        return !isBlank(first) && !isBlank(last)
    }

    public static func isTrimmed(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { isTrimmed(UnsafeRawBufferPointer($0)) }
    }

    public static func isValidName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { isValidName(UnsafeRawBufferPointer($0)) }
    }

    public static func isValidValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { isValidValue(UnsafeRawBufferPointer($0)) }
    }

    /// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), at most 18 digits so it fits an Int64. A sign, a
    /// blank, a list (`5,5`) or anything else is not a length.
    public static func contentLength(_ value: UnsafeRawBufferPointer) -> Int64? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var length: Int64 = 0
        for byte in value {
            let digit = byte &- 0x30
            guard digit < 10 else { return nil }
            length = length * 10 + Int64(digit)
        }
        return length
    }

    public static func contentLength(_ value: String) -> Int64? {
        var value = value
        return value.withUTF8 { contentLength(UnsafeRawBufferPointer($0)) }
    }

    /// An authority (`host[:port]`, RFC 3986 §3.2): unreserved, percent-encoded, sub-delims, `:`, `[`
    /// and `]`. No blanks, no `/`, `?`, `#` or `@` (userinfo is never valid in HTTP, RFC 9110 §4.2.4).
    public static func isValidAuthority(_ authority: UnsafeRawBufferPointer) -> Bool {
        for byte in authority {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: continue
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"): continue
            case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                 UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
                 UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"): continue
            default: return false
            }
        }
        return true
    }

    public static func isValidAuthority(_ authority: String) -> Bool {
        var authority = authority
        return authority.withUTF8 { isValidAuthority(UnsafeRawBufferPointer($0)) }
    }

    /// A request-target as it goes on a request line: visible ASCII only, nothing to split it.
    public static func isValidTarget(_ target: UnsafeRawBufferPointer) -> Bool {
        guard !target.isEmpty else { return false }
        for byte in target where !ASCII.isTargetByte(byte) { return false }
        return true
    }

    public static func isValidTarget(_ target: String) -> Bool {
        var target = target
        return target.withUTF8 { isValidTarget(UnsafeRawBufferPointer($0)) }
    }

    /// A method is a token (RFC 9110 §9.1).
    public static func isValidMethod(_ method: String) -> Bool { isValidName(method) }

    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == ASCII.space || byte == ASCII.tab }
}
