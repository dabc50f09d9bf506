/// Byte classes of RFC 9110/9112 and case-insensitive comparisons on raw bytes, without allocating.
public enum ASCII {
    public static let cr: UInt8 = 0x0D
    public static let lf: UInt8 = 0x0A
    public static let space: UInt8 = 0x20
    public static let tab: UInt8 = 0x09
    public static let colon: UInt8 = 0x3A

    @inline(__always)
    public static func lower(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    /// `tchar` (RFC 9110 §5.6.2): the bytes of methods, header names and transfer codings.
    @inline(__always)
    public static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// A field-value byte (RFC 9110 §5.5): visible ASCII, SP, HTAB and obs-text. NUL, CR, LF and the
    /// other controls are never allowed, whatever their position.
    @inline(__always)
    public static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == tab
    }

    /// A request-target byte: visible ASCII only. Anything else must be percent-encoded.
    @inline(__always)
    public static func isTargetByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }

    public static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count where lower(bytes[index]) != expected[index] { return false }
        return true
    }

    public static func hasLowercasePrefix(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count >= lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<lowercase.utf8CodeUnitCount where lower(bytes[index]) != expected[index] { return false }
        return true
    }

    /// Case-insensitive equality of two byte strings.
    public static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for index in 0..<a.count where lower(a[index]) != lower(b[index]) { return false }
        return true
    }

    public static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: String) -> Bool {
        var b = b
        return b.withUTF8 { equalsIgnoringCase(a, UnsafeRawBufferPointer($0)) }
    }

    /// `bytes` with leading and trailing SP/HTAB removed.
    public static func trimmingWhitespace(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == space || bytes[start] == tab { start += 1 }
        while end > start, bytes[end - 1] == space || bytes[end - 1] == tab { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// Calls `body` with each comma-separated element of a list value, trimmed; empty elements skipped.
    public static func forEachListElement(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == 0x2C {
            let element = trimmingWhitespace(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            if !element.isEmpty { body(element) }
            start = index + 1
        }
    }
}
