/// A value of the Redis serialization protocol (RESP2, which every Redis answers with unless asked
/// otherwise): what the `redis` store's replies are read into.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// nil: the null bulk string (`$-1`).
    case bulkString([UInt8]?)
    /// nil: the null array (`*-1`).
    case array([RESPValue]?)
}

/// How much of a reply the parser accepts: a peer that announces more is refused, never buffered for.
public struct RESPLimits: Sendable {
    public var maxBulkBytes = 1 << 20
    public var maxElements = 4_096
    public var maxDepth = 8
    /// A status, error or integer line, or a length line.
    public var maxLineBytes = 4_096

    public init() {}
}

public struct RESPError: Error, Equatable, CustomStringConvertible {
    public var description: String
}

/// Reads RESP replies from bytes as they arrive: `parse` returns nil until a whole value is there.
/// Works on raw bytes, not generically: a generic parser called from another module is not
/// specialized, and looked its types up at run time on every byte.
public enum RESPParser {
    /// One value starting at `offset`, and the offset after it; nil when the bytes end inside it.
    /// Throws on bytes that are not RESP or exceed `limits` (the connection is then unusable).
    public static func parse(_ bytes: [UInt8], from offset: Int, limits: RESPLimits = RESPLimits()) throws -> (RESPValue, Int)? {
        try bytes.withUnsafeBytes { try parse($0, from: offset, limits: limits) }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, from offset: Int,
                             limits: RESPLimits = RESPLimits()) throws -> (RESPValue, Int)? {
        try value(bytes, at: offset, depth: 0, limits: limits)
    }

    private static func value(_ bytes: UnsafeRawBufferPointer, at start: Int, depth: Int,
                              limits: RESPLimits) throws -> (RESPValue, Int)? {
        guard start < bytes.count else { return nil }
        guard let (lineStart, lineEnd, next) = try line(bytes, from: start + 1, limits: limits) else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "+"):
            return (.simpleString(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]), as: UTF8.self)), next)
        case UInt8(ascii: "-"):
            return (.error(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]), as: UTF8.self)), next)
        case UInt8(ascii: ":"): return (.integer(try integer(bytes, lineStart, lineEnd)), next)
        case UInt8(ascii: "$"):
            let length = try integer(bytes, lineStart, lineEnd)
            if length == -1 { return (.bulkString(nil), next) }
            guard length >= 0, length <= limits.maxBulkBytes else { throw RESPError(description: "bulk string length \(length)") }
            let end = next + Int(length)
            guard end + 2 <= bytes.count else { return nil }
            guard bytes[end] == 13, bytes[end + 1] == 10 else { throw RESPError(description: "bulk string not ended by CRLF") }
            return (.bulkString(Array(bytes[next..<end])), end + 2)
        case UInt8(ascii: "*"):
            let count = try integer(bytes, lineStart, lineEnd)
            if count == -1 { return (.array(nil), next) }
            guard count >= 0, count <= limits.maxElements else { throw RESPError(description: "array of \(count) elements") }
            guard depth < limits.maxDepth else { throw RESPError(description: "arrays nested deeper than \(limits.maxDepth)") }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(count))
            var position = next
            for _ in 0..<count {
                guard let (element, after) = try value(bytes, at: position, depth: depth + 1, limits: limits) else { return nil }
                elements.append(element)
                position = after
            }
            return (.array(elements), position)
        default:
            throw RESPError(description: "unknown type byte \(bytes[start])")
        }
    }

    /// Where the line from `start` ends (before its CRLF) and the offset after the CRLF; nil when no CRLF
    /// has come yet.
    private static func line(_ bytes: UnsafeRawBufferPointer, from start: Int,
                             limits: RESPLimits) throws -> (start: Int, end: Int, next: Int)? {
        var index = start
        while index < bytes.count {
            if bytes[index] == 13 {
                guard index + 1 < bytes.count else { return nil }
                guard bytes[index + 1] == 10 else { throw RESPError(description: "CR without LF") }
                return (start, index, index + 2)
            }
            if bytes[index] == 10 { throw RESPError(description: "LF without CR") }
            index += 1
            if index - start > limits.maxLineBytes { throw RESPError(description: "a line over \(limits.maxLineBytes) bytes") }
        }
        return nil
    }

    private static func integer(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) throws -> Int64 {
        var value: Int64 = 0
        var index = start
        let negative = index < end && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < end else { throw RESPError(description: "not an integer") }
        while index < end {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { throw RESPError(description: "not an integer") }
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times.addingReportingOverflow(Int64(byte - 0x30))
            guard !overflowA, !overflowB else { throw RESPError(description: "integer out of range") }
            value = sum
            index += 1
        }
        return negative ? -value : value
    }
}

/// Writes one command at a time as RESP (an array of bulk strings, the only form a server must
/// accept) into bytes it keeps: the `redis` store's connection reuses one writer, so a command costs no
/// allocation, neither a string per argument nor an array of them.
public struct RESPCommandWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    /// Forgets the last command, keeping the storage.
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    /// A whole command given as its arguments.
    public mutating func command(_ arguments: [String]) {
        begin(arguments: arguments.count)
        for argument in arguments { self.argument(argument) }
    }

    /// Starts a command of `count` arguments.
    public mutating func begin(arguments count: Int) {
        bytes.append(UInt8(ascii: "*"))
        appendLine(Int64(count))
    }

    public mutating func argument(_ text: String) {
        startArgument(length: text.utf8.count)
        append(text)
        endArgument()
    }

    public mutating func argument(_ number: Int64) {
        startArgument(length: Self.decimalLength(number))
        append(number)
        endArgument()
    }

    /// An argument written in parts: `length` bytes (the parts' total), then the parts by `append`, then
    /// `endArgument`.
    public mutating func startArgument(length: Int) {
        bytes.append(UInt8(ascii: "$"))
        appendLine(Int64(length))
    }

    public mutating func endArgument() {
        bytes.append(13)
        bytes.append(10)
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ byte: UInt8) { bytes.append(byte) }

    /// Bytes made once and copied into every command (a rule's constant arguments, as RESP).
    public mutating func append(_ bytes: [UInt8]) { self.bytes.append(contentsOf: bytes) }

    /// `number` in decimal: the digits made on the stack, then appended at once (an append per digit
    /// checked the array's uniqueness and capacity each time, which showed in the profile).
    public mutating func append(_ number: Int64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: a sign and 20 digits fit
        var rest = number.magnitude
        var start = 24
        withUnsafeMutableBytes(of: &digits) { out in
            repeat {
                start -= 1
                out[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if number < 0 {
                start -= 1
                out[start] = UInt8(ascii: "-")
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: out[start...]))
        }
    }

    private mutating func appendLine(_ number: Int64) {
        append(number)
        endArgument()
    }

    /// The bytes `number` takes in decimal, its sign included.
    public static func decimalLength(_ number: Int64) -> Int {
        digitCount(number.magnitude) + (number < 0 ? 1 : 0)
    }

    private static func digitCount(_ magnitude: UInt64) -> Int {
        var rest = magnitude
        var count = 1
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }
}

/// Writes RESP values (for tests and the fuzz target's round trip), and commands from a list of
/// arguments where no writer is kept.
public enum RESPEncoder {
    public static func command(_ arguments: [String]) -> [UInt8] {
        var writer = RESPCommandWriter()
        writer.command(arguments)
        return writer.bytes
    }

    public static func encode(_ value: RESPValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    private static func write(_ value: RESPValue, into out: inout [UInt8]) {
        switch value {
        case .simpleString(let text): out.append(contentsOf: "+\(text)\r\n".utf8)
        case .error(let text): out.append(contentsOf: "-\(text)\r\n".utf8)
        case .integer(let number): out.append(contentsOf: ":\(number)\r\n".utf8)
        case .bulkString(nil): out.append(contentsOf: "$-1\r\n".utf8)
        case .bulkString(let bytes?):
            out.append(contentsOf: "$\(bytes.count)\r\n".utf8)
            out.append(contentsOf: bytes)
            out.append(contentsOf: "\r\n".utf8)
        case .array(nil): out.append(contentsOf: "*-1\r\n".utf8)
        case .array(let elements?):
            out.append(contentsOf: "*\(elements.count)\r\n".utf8)
            for element in elements { write(element, into: &out) }
        }
    }
}
