import Testing
@testable import GatehouseRateLimit

/// The redis store's side of the script: the arguments a request sends and the decisions read back.
/// The Lua itself runs in Redis (tests/integration/test_rate_limit_redis.py); here, its reply is given.
@Suite struct RedisRateLimitScriptTests {
    static let second: Int64 = 1_000_000_000
    /// 2026-12-07 12:00:00.25 UTC.
    static let now = Int64(1_796_644_800) * second + 250_000_000
    static let bucket = CounterIdentity(rule: "ns/p/ip", key: ["source.ip"],
                                        algorithm: .bucket(TokenBucketPolicy(requests: 10, unitNanoseconds: second, burst: 5)))
    static let daily = CounterIdentity(rule: "ns/p/key", key: ["request.headers[x-api-key]"],
                                       algorithm: .quota(QuotaPolicy(requests: 3, period: .day, calendar: QuotaCalendar()!)))

    static func takes(enforced: Bool = true) -> [RedisTake] {
        [RedisTake(rule: RedisRule(bucket), key: "10.0.0.1", enforced: enforced),
         RedisTake(rule: RedisRule(daily), key: "k1", enforced: true)]
    }

    /// The command as Redis reads it: parsed back into its arguments.
    static func written(_ requests: [[RedisTake]], call: RedisRateLimitScript.Call) throws -> [String] {
        var writer = RESPCommandWriter(capacity: 0)
        RedisRateLimitScript.writeCommand(requests, now: now, call: call, into: &writer)
        let parsed = try #require(try RESPParser.parse(writer.bytes, from: 0))
        #expect(parsed.1 == writer.bytes.count, "one command, nothing after it")
        guard case .array(let elements?) = parsed.0 else { Issue.record("not an array: \(parsed.0)"); return [] }
        return elements.map { element in
            guard case .bulkString(let bytes?) = element else { return "not a bulk string: \(element)" }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @Test func theCommandNamesEachRulesKeyAndCarriesItsArithmeticInMicroseconds() throws {
        let bucketSpace = RedisRateLimitScript.namespace(of: Self.bucket)
        let dailySpace = RedisRateLimitScript.namespace(of: Self.daily)
        let dayStart = Int64(1_796_601_600)  // 2026-12-07 00:00 UTC
        #expect(try Self.written([Self.takes(enforced: false)], call: .sha1("abc123")) == [
            "EVALSHA", "abc123",
            "2", "\(bucketSpace):10.0.0.1", "\(dailySpace):k1:\(dayStart)",
            "1796644800250000",
            // One request, of two rules.
            "2",
            // 10 a second: one every 100 000 µs; a burst of 5 runs 4 intervals ahead; a shadow rule. Its
            // key expires when the bucket is full again at the latest, 500 ms on, and a second's grace; a
            // first take leaves it one interval ahead.
            "b", "400000", "100000", "0", "1796644801750", "1796644800350000",
            // Three a day, counted one by one; the day's key outlives the day by five minutes.
            "q", "3", "1", "1", "\((dayStart + 86_400) * 1_000 + 300_000)", "1",
        ])
        // In full when Redis lacks the script: the same keys and arguments behind it.
        let full = try Self.written([Self.takes()], call: .source)
        #expect(full.prefix(2) == ["EVAL", RedisRateLimitScript.source])
        #expect(full.count == 19)
        #expect(full[3] == RedisRateLimitScript.key(Self.takes()[0], now: Self.now))
        #expect(full[4] == RedisRateLimitScript.key(Self.takes()[1], now: Self.now))
    }

    @Test func requestsOfOneTickShareACommandEachWithItsRules() throws {
        let takes = Self.takes()
        let command = try Self.written([[takes[1]], takes, [takes[0]]], call: .sha1("abc123"))
        // Every request's keys, request after request; then now, and each request's count and rules.
        #expect(command[2] == "4")
        #expect(Array(command[3...6]) == [takes[1], takes[0], takes[1], takes[0]].map {
            RedisRateLimitScript.key($0, now: Self.now)
        })
        #expect(command[7] == "1796644800250000")
        #expect(command[8] == "1" && command[9] == "q")
        #expect(command[15] == "2" && command[16] == "b" && command[22] == "q")
        #expect(command[28] == "1" && command[29] == "b")
        #expect(command.count == 4 + 3 + 4 * 7)
        // The reply is one per request, in order; a reply of another shape is an error.
        let reply = RESPValue.array([.array([.integer(0), .integer(0)]), .array([.integer(1), .integer(0)]),
                                     .array([.integer(0), .integer(0)])])
        #expect(try RedisRateLimitScript.requestReplies(reply, count: 3).count == 3)
        #expect(throws: RedisRateLimitScript.ReplyError.self) { try RedisRateLimitScript.requestReplies(reply, count: 2) }
        #expect(throws: RedisRateLimitScript.ReplyError.self) {
            try RedisRateLimitScript.requestReplies(.error("NOSCRIPT No matching script"), count: 1)
        }
    }

    @Test func numbersAreWrittenInDecimalWithTheirLengths() throws {
        for number: Int64 in [0, 7, 10, 99, 100, -1, -10, 1_796_644_800_250_000, .max, .min] {
            var writer = RESPCommandWriter()
            writer.begin(arguments: 1)
            writer.argument(number)
            #expect(writer.bytes == Array("*1\r\n$\(String(number).utf8.count)\r\n\(number)\r\n".utf8))
            #expect(RESPCommandWriter.decimalLength(number) == String(number).count)
        }
    }

    @Test func namespacesAreStableAndChangeWithTheRulesArithmetic() {
        #expect(RedisRateLimitScript.namespace(of: Self.bucket) == RedisRateLimitScript.namespace(of: Self.bucket))
        var changed = Self.bucket
        changed.algorithm = .bucket(TokenBucketPolicy(requests: 11, unitNanoseconds: Self.second, burst: 5))
        #expect(RedisRateLimitScript.namespace(of: changed) != RedisRateLimitScript.namespace(of: Self.bucket))
        #expect(RedisRateLimitScript.namespace(of: Self.bucket).hasPrefix("gatehouse:rl:"))
        #expect(RedisRateLimitScript.namespace(of: Self.bucket).count == "gatehouse:rl:".count + 16)
    }

    @Test func decisionsComeFromTheStatesTheScriptReadByTheSameArithmetic() throws {
        let nowMicros = Self.now / 1_000
        // The bucket had 2 tokens used (full again 200 ms from now); the quota had counted 1 today.
        let reply = RESPValue.array([.integer(0), .integer(nowMicros + 200_000), .integer(1)])
        let decisions = try RedisRateLimitScript.decisions(reply, takes: Self.takes(), now: Self.now)
        #expect(decisions.count == 2)
        #expect(decisions[0]?.allowed == true)
        #expect(decisions[0]?.remaining == 2)
        #expect(decisions[0]?.limit == 10)
        #expect(decisions[1]?.allowed == true)
        #expect(decisions[1]?.remaining == 1)
        #expect(decisions[1]?.resetSeconds == 86_400 - 12 * 3_600)
    }

    @Test func aRefusalStopsTheRulesAfterIt() throws {
        let nowMicros = Self.now / 1_000
        // The bucket is empty (4 intervals ahead and one more): the script stopped at key 1.
        let reply = RESPValue.array([.integer(1), .integer(nowMicros + 500_000)])
        let decisions = try RedisRateLimitScript.decisions(reply, takes: Self.takes(), now: Self.now)
        #expect(decisions.count == 2)
        #expect(decisions[0]?.allowed == false)
        #expect(decisions[0]?.retryAfterSeconds == 1)
        #expect(decisions[1] == nil)
    }

    @Test func anUnexpectedReplyIsAnErrorNotADecision() {
        #expect(throws: RedisRateLimitScript.ReplyError.self) {
            try RedisRateLimitScript.decisions(.error("ERR wrong number of arguments"), takes: Self.takes(), now: Self.now)
        }
        #expect(throws: RedisRateLimitScript.ReplyError.self) {
            try RedisRateLimitScript.decisions(.array([.integer(0), .integer(1)]), takes: Self.takes(), now: Self.now)
        }
        #expect(throws: RedisRateLimitScript.ReplyError.self) {
            try RedisRateLimitScript.decisions(.array([.integer(3)]), takes: Self.takes(), now: Self.now)
        }
    }

    @Test func aMicrosecondBucketDecidesAsTheNanosecondOneForWholeMicrosecondRates() {
        let policy = TokenBucketPolicy(requests: 8, unitNanoseconds: 60 * Self.second, burst: 3)
        let micro = RedisRateLimitScript.microsecondBucket(policy)
        var nanoState: Int64 = 0
        var microState: Int64 = 0
        for step in 0..<40 {
            let now = Self.now + Int64(step) * 1_700_000_000
            let (nextNano, nano) = policy.take(state: nanoState, now: now)
            let (nextMicro, microDecision) = micro.take(state: microState, now: now / 1_000)
            #expect(nano == microDecision)
            nanoState = nextNano
            microState = nextMicro
        }
    }
}
