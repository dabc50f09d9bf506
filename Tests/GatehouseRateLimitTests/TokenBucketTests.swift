import Testing
@testable import GatehouseRateLimit

/// The token bucket as GCRA, on an injected clock (nanoseconds): burst, refill, and the bound of
/// `requests` + `burst` in any window of one unit.
@Suite struct TokenBucketTests {
    static let second: Int64 = 1_000_000_000

    /// Takes `count` tokens at `now`, threading the state; returns how many passed.
    static func take(_ policy: TokenBucketPolicy, _ state: inout Int64, count: Int, at now: Int64) -> Int {
        var passed = 0
        for _ in 0..<count {
            let (next, decision) = policy.take(state: state, now: now)
            state = next
            if decision.allowed { passed += 1 }
        }
        return passed
    }

    @Test func aFullBucketLetsTheBurstThroughAtOnceThenRefusesWithRetryAfter() {
        let policy = TokenBucketPolicy(requests: 10, unitNanoseconds: Self.second, burst: 5)
        var state: Int64 = 0
        let now = 100 * Self.second
        #expect(Self.take(policy, &state, count: 5, at: now) == 5)
        let (after, refused) = policy.take(state: state, now: now)
        #expect(!refused.allowed && after == state, "a refusal takes nothing")
        #expect(refused.remaining == 0 && refused.limit == 10)
        #expect(refused.retryAfterSeconds == 1, "a token comes back in 100 ms: rounded up to a whole second")
        #expect(refused.resetSeconds == 1, "full again after 500 ms")
    }

    @Test func tokensComeBackAtTheRateOneByOne() {
        let policy = TokenBucketPolicy(requests: 10, unitNanoseconds: Self.second, burst: 1)
        var state: Int64 = 0
        let start = 5 * Self.second
        #expect(Self.take(policy, &state, count: 3, at: start) == 1)
        #expect(Self.take(policy, &state, count: 1, at: start + 99_999_999) == 0, "1 ns short of 100 ms")
        #expect(Self.take(policy, &state, count: 1, at: start + 100_000_000) == 1)
    }

    @Test func remainingCountsWholeTokensAfterTheRequest() {
        let policy = TokenBucketPolicy(requests: 60, unitNanoseconds: 60 * Self.second, burst: 3)
        let (state, first) = policy.take(state: 0, now: 10 * Self.second)
        #expect(first.allowed && first.remaining == 2)
        let (_, second) = policy.take(state: state, now: 10 * Self.second + Self.second / 2)
        #expect(second.allowed && second.remaining == 1, "half a token back is no token")
        #expect(policy.remaining(state: state, now: 11 * Self.second) == 3)
    }

    @Test func noUnitLongWindowEverPassesMoreThanRequestsPlusBurst() {
        let policy = TokenBucketPolicy(requests: 20, unitNanoseconds: Self.second, burst: 7)
        var state: Int64 = 0
        var passedAt: [Int64] = []
        // A request every millisecond for 5 seconds: far more than the limit.
        for step in Int64(0)..<5_000 {
            let now = 1_000 * Self.second + step * 1_000_000
            let (next, decision) = policy.take(state: state, now: now)
            state = next
            if decision.allowed { passedAt.append(now) }
        }
        var worst = 0
        for (index, start) in passedAt.enumerated() {
            let inWindow = passedAt[index...].prefix { $0 < start + Self.second }.count
            worst = max(worst, inWindow)
        }
        #expect(worst <= 27)
        #expect(passedAt.count >= 5 * 20, "and the rate itself is kept: 20 a second over 5 seconds, plus the burst")
        #expect(passedAt.count <= 5 * 20 + 7)
    }

    @Test func burstDefaultsToAUnitsWorthAndIsAtLeastOne() {
        #expect(TokenBucketPolicy(requests: 100, unitNanoseconds: 60 * Self.second).burst == 100)
        #expect(TokenBucketPolicy(requests: 5, unitNanoseconds: Self.second, burst: 0).burst == 1)
    }

    @Test func anOldStateIsAFullBucket() {
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: 3_600 * Self.second, burst: 2)
        let (_, decision) = policy.take(state: 5 * Self.second, now: 1_000_000 * Self.second)
        #expect(decision.allowed && decision.remaining == 1)
    }

    @Test func aBurstBeyondACenturyOfRefillIsCappedRatherThanOverflowing() {
        let hour: Int64 = 3_600_000_000_000
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: hour, burst: Int.max)
        #expect(policy.burst == Int(TokenBucketPolicy.longestRefill / hour) + 1)
        let now: Int64 = 1_796_644_800_000_000_000
        var state: Int64 = 0
        for _ in 0..<1_000 {
            let (next, decision) = policy.take(state: state, now: now)
            #expect(decision.allowed)
            state = next
        }
        #expect(policy.remaining(state: state, now: now) == policy.burst - 1_000)
    }
}
