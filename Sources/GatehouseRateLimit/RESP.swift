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

/// Writes RESP: commands as arrays of bulk strings (the only form a server must accept), and any value
/// (for tests and the fuzz target's round trip).
public enum RESPEncoder {
    public static func command(_ arguments: [String]) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: "*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            out.append(contentsOf: "$\(argument.utf8.count)\r\n".utf8)
            out.append(contentsOf: argument.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        return out
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
