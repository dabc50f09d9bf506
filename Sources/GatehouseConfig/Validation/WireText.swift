/// What config text may hold when the gateway writes it onto the wire: a path or URI goes on a request
/// line or in `Location`, an authority in `Host`/`:authority`, a header value in a field. The encoder
/// refuses anything else at run time; refusing it here says so at the field, before it serves.
enum WireText {
    /// A problem with text that becomes a request-target (or a `Location` URI): visible ASCII only. A
    /// blank would split the request line, CR/LF would end it.
    static func pathProblem(_ text: String) -> String? {
        for byte in text.utf8 where byte <= 0x20 || byte >= 0x7F {
            return "\(describe(byte)) is not allowed here: the value is written on the request line; percent-encode it"
        }
        return nil
    }

    /// A problem with text that becomes an authority (`host[:port]`).
    static func authorityProblem(_ text: String) -> String? {
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: continue
            case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
                 UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                 UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
                 UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):
                continue
            default:
                return "\(describe(byte)) is not allowed in an authority (host[:port])"
            }
        }
        return nil
    }

    /// A problem with a header value: control bytes (CR, LF, NUL, DEL…) would split or corrupt the
    /// message. HTAB is allowed.
    static func fieldValueProblem(_ text: String) -> String? {
        for byte in text.utf8 where (byte < 0x20 && byte != 0x09) || byte == 0x7F {
            return "header value must not contain \(describe(byte))"
        }
        return nil
    }

    static func describe(_ byte: UInt8) -> String {
        switch byte {
        case 0x0D: "CR"
        case 0x0A: "LF"
        case 0x00: "NUL"
        case 0x20: "a space"
        case 0x09: "a tab"
        case 0x7F: "DEL"
        case ..<0x20: "the control byte 0x\(String(byte, radix: 16, uppercase: true))"
        case 0x80...: "a non-ASCII byte"
        default: "\"\(Character(Unicode.Scalar(byte)))\""
        }
    }
}
