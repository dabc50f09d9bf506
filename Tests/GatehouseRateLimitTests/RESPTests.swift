import Testing
@testable import GatehouseRateLimit

/// RESP replies read as they arrive (nothing until a whole value is there), hostile ones refused within
/// limits, and commands written as arrays of bulk strings.
@Suite struct RESPTests {
    static func parse(_ text: String, limits: RESPLimits = RESPLimits()) throws -> (RESPValue, Int)? {
        try RESPParser.parse(Array(text.utf8), from: 0, limits: limits)
    }

    @Test func everyReplyTypeIsRead() throws {
        #expect(try Self.parse("+OK\r\n")?.0 == .simpleString("OK"))
        #expect(try Self.parse("-NOSCRIPT No matching script\r\n")?.0 == .error("NOSCRIPT No matching script"))
        #expect(try Self.parse(":-42\r\n")?.0 == .integer(-42))
        #expect(try Self.parse("$5\r\nhello\r\n")?.0 == .bulkString(Array("hello".utf8)))
        #expect(try Self.parse("$-1\r\n")?.0 == .bulkString(nil))
        #expect(try Self.parse("*-1\r\n")?.0 == .array(nil))
        let text = "*3\r\n:1\r\n*1\r\n$0\r\n\r\n+x\r\n"
        let nested = try Self.parse(text + ":9\r\n")
        #expect(nested?.0 == .array([.integer(1), .array([.bulkString([])]), .simpleString("x")]))
        #expect(nested?.1 == text.utf8.count, "the offset after the value, not after the next one")
    }

    @Test func aValueCutAnywhereIsNotReadYet() throws {
        let whole = Array("*2\r\n$3\r\nabc\r\n:7\r\n".utf8)
        for cut in 0..<whole.count {
            #expect(try RESPParser.parse(Array(whole[..<cut]), from: 0) == nil, "cut at \(cut)")
        }
        #expect(try RESPParser.parse(whole, from: 0)?.1 == whole.count)
    }

    @Test func twoRepliesInOneReadAreReadOneAfterTheOther() throws {
        let bytes = Array(":1\r\n:2\r\n".utf8)
        let (first, next) = try #require(try RESPParser.parse(bytes, from: 0))
        let (second, end) = try #require(try RESPParser.parse(bytes, from: next))
        #expect(first == .integer(1) && second == .integer(2) && end == bytes.count)
    }

    @Test(arguments: ["?x\r\n", ":12a\r\n", ":\r\n", "+a\nb\r\n", "$3\r\nabcd\r\n", "$-2\r\n",
                      ":99999999999999999999\r\n", "+a\rb\r\n"])
    func malformedRepliesAreRefused(_ text: String) {
        #expect(throws: RESPError.self) { try Self.parse(text) }
    }

    @Test func limitsRefuseWhatWouldBeBufferedForNothing() {
        var limits = RESPLimits()
        limits.maxBulkBytes = 10
        limits.maxElements = 2
        limits.maxDepth = 1
        limits.maxLineBytes = 8
        #expect(throws: RESPError.self) { try Self.parse("$11\r\n", limits: limits) }
        #expect(throws: RESPError.self) { try Self.parse("*3\r\n", limits: limits) }
        #expect(throws: RESPError.self) { try Self.parse("*1\r\n*1\r\n:1\r\n", limits: limits) }
        #expect(throws: RESPError.self) { try Self.parse("+0123456789", limits: limits) }
    }

    @Test func commandsAreArraysOfBulkStringsAndValuesRoundTrip() throws {
        #expect(RESPEncoder.command(["EVALSHA", "abc", "1", "k"]) == Array("*4\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$1\r\nk\r\n".utf8))
        let value = RESPValue.array([.integer(-3), .bulkString(nil), .simpleString("OK"), .array([.error("ERR x")])])
        let bytes = RESPEncoder.encode(value)
        #expect(try RESPParser.parse(bytes, from: 0)?.0 == value)
    }
}
