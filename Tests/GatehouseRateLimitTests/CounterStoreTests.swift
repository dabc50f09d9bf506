import Foundation
import Testing
@testable import GatehouseRateLimit

/// The memory store as the data plane uses it: rules' tables kept across reloads by identity, refunds,
/// quota periods cached per loop, and the sweep. Instants are injected (wall-clock nanoseconds).
@Suite struct CounterStoreTests {
    static let second: Int64 = 1_000_000_000
    static let bucket = RateLimitAlgorithm.bucket(TokenBucketPolicy(requests: 3, unitNanoseconds: 3_600 * second, burst: 3))
    static let daily = RateLimitAlgorithm.quota(QuotaPolicy(requests: 5, period: .day, calendar: QuotaCalendar()!))

    static func identity(_ rule: String, _ algorithm: RateLimitAlgorithm = bucket, key: [String] = ["source.ip"]) -> CounterIdentity {
        CounterIdentity(rule: rule, key: key, algorithm: algorithm)
    }

    /// 2026-12-07 12:00:00 UTC.
    static let noon = Int64(1_796_644_800) * second

    func takeAll(_ limiter: LoopRateLimiter, rule: Int, key: String, times: Int, now: Int64) -> [Bool] {
        (0..<times).map { _ in limiter.take(rule: rule, key: key, now: now).allowed }
    }

    @Test func aReloadKeepsTheCountersOfAnUnchangedRuleAndStartsAChangedOneAfresh() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/a"), Self.identity("ns/p/b")], store: store)
        #expect(takeAll(limiter, rule: 0, key: "10.0.0.1", times: 4, now: Self.noon) == [true, true, true, false])
        #expect(takeAll(limiter, rule: 1, key: "10.0.0.1", times: 4, now: Self.noon) == [true, true, true, false])
        // Version 2: a is unchanged (and moves to index 1), b's limit changed, c is new.
        let changedB = RateLimitAlgorithm.bucket(TokenBucketPolicy(requests: 4, unitNanoseconds: 3_600 * Self.second, burst: 4))
        limiter.prepare(version: 2, identities: [Self.identity("ns/p/c"), Self.identity("ns/p/a"), Self.identity("ns/p/b", changedB)],
                        store: store)
        #expect(!limiter.take(rule: 1, key: "10.0.0.1", now: Self.noon).allowed, "a kept its counter")
        #expect(limiter.take(rule: 2, key: "10.0.0.1", now: Self.noon).allowed, "b starts afresh")
        #expect(limiter.take(rule: 0, key: "10.0.0.1", now: Self.noon).allowed)
        // Another loop binding version 2 finds the same tables.
        let other = LoopRateLimiter()
        other.prepare(version: 2, identities: [Self.identity("ns/p/c"), Self.identity("ns/p/a"), Self.identity("ns/p/b", changedB)],
                      store: store)
        #expect(!other.take(rule: 1, key: "10.0.0.1", now: Self.noon).allowed)
    }

    @Test func aKeyChangeStartsTheRuleAfresh() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/a")], store: store)
        _ = takeAll(limiter, rule: 0, key: "k", times: 3, now: Self.noon)
        limiter.prepare(version: 2, identities: [Self.identity("ns/p/a", key: ["request.headers[x-api-key]"])], store: store)
        #expect(limiter.take(rule: 0, key: "k", now: Self.noon).allowed)
    }

    @Test func aRuleDroppedByAReloadIsForgotten() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/a")], store: store)
        _ = takeAll(limiter, rule: 0, key: "k", times: 3, now: Self.noon)
        limiter.prepare(version: 2, identities: [], store: store)
        #expect(store.all.isEmpty)
        limiter.prepare(version: 3, identities: [Self.identity("ns/p/a")], store: store)
        #expect(limiter.take(rule: 0, key: "k", now: Self.noon).allowed, "brought back: a new counter")
    }

    @Test func aRefundGivesBackAQuotaCountAndABucketToken() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/q", Self.daily), Self.identity("ns/p/b")], store: store)
        #expect(limiter.take(rule: 0, key: "k", now: Self.noon).remaining == 4)
        limiter.refund(rule: 0, key: "k", now: Self.noon)
        #expect(limiter.remaining(rule: 0, key: "k", now: Self.noon) == 5)
        _ = takeAll(limiter, rule: 1, key: "k", times: 3, now: Self.noon)
        limiter.refund(rule: 1, key: "k", now: Self.noon)
        #expect(limiter.take(rule: 1, key: "k", now: Self.noon).allowed)
        #expect(!limiter.take(rule: 1, key: "k", now: Self.noon).allowed)
    }

    @Test func aRefundAfterThePeriodEndedLeavesTheNewPeriodAlone() {
        let algorithm = Self.daily
        let day = algorithm.window(at: Self.noon)!
        let (state, _) = algorithm.take(state: 0, now: Self.noon, window: day)
        let tomorrow = algorithm.window(at: Self.noon + 86_400 * Self.second)!
        #expect(algorithm.refund(state: state, window: tomorrow) == state)
    }

    @Test func theQuotaStartsAgainWhenTheLoopCrossesIntoTheNextPeriod() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/q", Self.daily)], store: store)
        let beforeMidnight = Self.noon + (12 * 3_600 - 1) * Self.second
        #expect(takeAll(limiter, rule: 0, key: "k", times: 6, now: beforeMidnight) == [true, true, true, true, true, false])
        let decision = limiter.take(rule: 0, key: "k", now: beforeMidnight)
        #expect(decision.resetSeconds == 1 && decision.retryAfterSeconds == 1)
        #expect(limiter.take(rule: 0, key: "k", now: beforeMidnight + Self.second).remaining == 4)
    }

    @Test func theSweepForgetsFullBucketsAndOverQuotasOnly() {
        let store = CounterStore()
        let limiter = LoopRateLimiter()
        limiter.prepare(version: 1, identities: [Self.identity("ns/p/b"), Self.identity("ns/p/q", Self.daily)], store: store)
        _ = limiter.take(rule: 0, key: "a", now: Self.noon)
        _ = limiter.take(rule: 1, key: "a", now: Self.noon)
        #expect(store.sweep(now: Self.noon) == 2, "both still in use")
        // The bucket is full again 20 minutes on (3 per hour); the day is not over.
        #expect(store.sweep(now: Self.noon + 1_200 * Self.second) == 1)
        #expect(store.sweep(now: Self.noon + 86_400 * Self.second) == 0)
        // The loop's cached cells were retired: it finds fresh ones.
        #expect(limiter.take(rule: 1, key: "a", now: Self.noon + 86_400 * Self.second).remaining == 4)
    }

    @Test func remainingAndIdleFollowTheAlgorithm() {
        let algorithm = Self.bucket
        #expect(algorithm.remaining(state: 0, now: Self.noon, window: nil) == 3)
        #expect(algorithm.isIdle(state: Self.noon, now: Self.noon, window: nil))
        #expect(!algorithm.isIdle(state: Self.noon + 1, now: Self.noon, window: nil))
        #expect(algorithm.limit == 3 && Self.daily.limit == 5)
    }
}
