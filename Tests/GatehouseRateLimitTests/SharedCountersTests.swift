import Testing
@testable import GatehouseRateLimit

/// The memory store's counters: exact across threads racing on one key (each with its own loop cache),
/// and idle keys swept without losing an update that races with the sweep.
@Suite struct SharedCountersTests {
    static let second: Int64 = 1_000_000_000

    @Test func racingLoopsNeverPassMoreThanTheBurstAtOneInstant() async {
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: 3_600 * Self.second, burst: 50)
        let table = SharedCounterTable()
        let now = 10_000 * Self.second
        let passed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var cache = LoopCounterCache()
                    var count = 0
                    for _ in 0..<1_000 {
                        let decision = cache.apply("client-a", in: table) { policy.take(state: $0, now: now) }
                        if decision.allowed { count += 1 }
                    }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(passed == 50)
    }

    @Test func keysAreCountedApart() {
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: Self.second, burst: 1)
        let table = SharedCounterTable()
        var cache = LoopCounterCache()
        let now = 5 * Self.second
        #expect(cache.apply("a", in: table) { policy.take(state: $0, now: now) }.allowed)
        #expect(!cache.apply("a", in: table) { policy.take(state: $0, now: now) }.allowed)
        #expect(cache.apply("b", in: table) { policy.take(state: $0, now: now) }.allowed)
    }

    @Test func pastItsBoundATableCountsNewKeysTogetherUntilTheSweepMakesRoom() {
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: 60 * Self.second, burst: 2)
        let table = SharedCounterTable(stripes: 1, maxKeys: 2)
        var cache = LoopCounterCache()
        var now = 5 * Self.second
        func take(_ key: String) -> Bool { cache.apply(key, in: table) { policy.take(state: $0, now: now) }.allowed }
        #expect(take("a") && take("b"))
        #expect(table.count == 2)
        // c and d are invented keys past the bound: they share one bucket of 2, never more.
        #expect(take("c"))
        #expect(take("d"))
        #expect(!take("c"))
        #expect(!take("e"))
        #expect(table.count == 2)
        #expect(table.overflowsSinceLastAsked() == 3)
        #expect(table.overflowsSinceLastAsked() == 0)
        // A minute later a and b are full again and swept: c gets a counter of its own, starting full.
        now += 60 * Self.second
        #expect(table.sweep { policy.isIdleForTest(state: $0, now: now) } == 0)
        #expect(take("c") && take("c"))
        #expect(!take("c"))
        #expect(table.count == 1)
    }

    @Test func aSweptKeyStartsFreshAndALoopHoldingItsOldCellFindsTheNewOne() {
        let policy = TokenBucketPolicy(requests: 1, unitNanoseconds: Self.second, burst: 1)
        let table = SharedCounterTable()
        var loopA = LoopCounterCache(), loopB = LoopCounterCache()
        let start = 100 * Self.second
        #expect(loopA.apply("k", in: table) { policy.take(state: $0, now: start) }.allowed)
        #expect(!loopB.apply("k", in: table) { policy.take(state: $0, now: start) }.allowed, "one cell for both loops")
        // Two seconds on, the bucket is full again: the sweep drops the key.
        let later = start + 2 * Self.second
        #expect(table.sweep(isIdle: { $0 <= later }) == 0)
        // Both loops still hold the retired cell; each finds the new one, and they share it.
        #expect(loopA.apply("k", in: table) { policy.take(state: $0, now: later) }.allowed)
        #expect(!loopB.apply("k", in: table) { policy.take(state: $0, now: later) }.allowed)
        #expect(table.count == 1)
    }

    @Test func aStoredStateIsReadWithoutMakingACell() {
        let table = SharedCounterTable()
        var cache = LoopCounterCache()
        #expect(table.storedState(of: "k") == nil)
        #expect(table.count == 0, "reading made no cell")
        cache.apply("k", in: table) { state in (state + 7, ()) }
        #expect(table.storedState(of: "k") == 7)
        table.sweep(isIdle: { _ in true })
        #expect(table.storedState(of: "k") == nil, "a swept key is as good as new")
    }

    @Test func aKeyPastTheBoundReadsTheOverflowCellItIsCountedIn() {
        let table = SharedCounterTable(stripes: 1, maxKeys: 1)
        var cache = LoopCounterCache()
        cache.apply("own", in: table) { state in (state + 1, ()) }
        cache.apply("late", in: table) { state in (state + 5, ()) }
        #expect(table.storedState(of: "own") == 1)
        // The stripe is full: "late" was counted in the shared cell, and so would any new key be.
        #expect(table.storedState(of: "late") == 5)
        #expect(table.storedState(of: "never-seen") == 5)
        table.sweep(isIdle: { _ in true })
        #expect(table.storedState(of: "late") == nil, "room again: a new key gets a cell of its own")
    }

    @Test func aKeyInUseIsNotSwept() {
        let table = SharedCounterTable()
        var cache = LoopCounterCache()
        cache.apply("busy", in: table) { state in (state + 10, ()) }
        #expect(table.sweep(isIdle: { $0 == 0 }) == 1)
        #expect(cache.peek("busy", in: table) == 10)
    }

    @Test func aLoopCacheOverItsLimitStartsAgainWithoutLosingState() {
        let table = SharedCounterTable()
        var cache = LoopCounterCache(limit: 2)
        for key in ["a", "b", "c", "a"] { cache.apply(key, in: table) { state in (state + 1, ()) } }
        #expect(cache.peek("a", in: table) == 2)
        #expect(table.count == 3)
    }
}

extension TokenBucketPolicy {
    /// A bucket is idle (as good as a key never seen) once it is full again.
    func isIdleForTest(state: Int64, now: Int64) -> Bool { state <= now }
}
