/// Encodes an `AccessLogRecord` straight into UTF-8 bytes: one buffer per line, no intermediate
/// Strings. This runs once per request, so it avoids Swift String appends, which dominated the profile.
struct JSONLineEncoder {
    var bytes: [UInt8]
    private var first = true

    /// Starts a line at the end of `buffer` (taken over until `finish()` hands it back).
    init(appendingTo buffer: inout [UInt8]) {
        bytes = []
        swap(&bytes, &buffer)
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: StaticString, _ value: String?) {
        key(name)
        guard let value else { appendNull(); return }
        appendQuoted(value)
    }

    mutating func field(_ name: StaticString, _ value: Int64?) {
        key(name)
        guard let value else { appendNull(); return }
        appendInteger(value)
    }

    mutating func rawField(_ name: StaticString, _ writer: (inout [UInt8]) -> Void) {
        key(name)
        writer(&bytes)
    }

    mutating func finish(into buffer: inout [UInt8]) {
        bytes.append(UInt8(ascii: "}"))
        bytes.append(UInt8(ascii: "\n"))
        swap(&bytes, &buffer)
    }

    private mutating func appendNull() {
        bytes.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
    }

    mutating func appendInteger(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
    }

    /// `"RULE remaining=N[ shadow_limited]"` or `"RULE store_unavailable"`, written in place (no string
    /// is built per request).
    mutating func field(_ name: StaticString, _ entry: RateLimitLogEntry?) {
        key(name)
        guard let entry else { appendNull(); return }
        bytes.append(UInt8(ascii: "\""))
        appendEscaped(entry.rule)
        if entry.storeUnavailable {
            bytes.append(contentsOf: " store_unavailable\"".utf8)
            return
        }
        bytes.append(contentsOf: " remaining=".utf8)
        appendInteger(Int64(entry.remaining))
        if entry.shadowLimited { bytes.append(contentsOf: " shadow_limited".utf8) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Quotes and escapes so a hostile value (CR/LF, quotes, control bytes) can never split or forge a
    /// log line (ISTIO-SECURITY-2024-005).
    private mutating func appendQuoted(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        appendEscaped(string)
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscaped(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            var plainStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte == 0x22 || byte == 0x5C || byte < 0x20 || byte == 0x7F else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[plainStart..<index]))
                plainStart = index + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x22: bytes.append(UInt8(ascii: "\""))
                case 0x5C: bytes.append(UInt8(ascii: "\\"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[plainStart...]))
        }
    }
}
