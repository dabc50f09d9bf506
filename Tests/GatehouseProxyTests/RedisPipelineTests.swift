import Testing
@testable import GatehouseProxy

/// The Redis connection's bookkeeping on an injected clock: replies matched in order, the handshake
/// first, deadlines, stalls, and the back-off. (The shell is tested end to end with a real Redis in
/// tests/integration/test_rate_limit_redis.py.)
@Suite struct RedisPipelineTests {
    static let ms: Int64 = 1_000_000
    /// 50 ms, the Bootstrap's default.
    static func pipeline(handshakes: [String] = []) -> RedisPipeline<Int> {
        RedisPipeline(timeout: 50 * ms, handshakes: handshakes)
    }

    /// Sends `waiter` and expects it written.
    static func write(_ pipeline: inout RedisPipeline<Int>, _ waiter: Int, now: Int64) -> (connect: Bool, arm: Int64?) {
        let (send, arm) = pipeline.send(waiter, now: now)
        guard case .write(let connect) = send else {
            Issue.record("command \(waiter) refused: \(send)")
            return (false, arm)
        }
        return (connect, arm)
    }

    static func connected(_ pipeline: inout RedisPipeline<Int>) -> Bool { pipeline.connected() }

    static func answered(_ reply: RedisPipeline<Int>.Reply) -> Int? {
        command(reply)?.waiter
    }

    /// A command's reply: for whom, and whether it is the first answer after trouble.
    static func command(_ reply: RedisPipeline<Int>.Reply) -> (waiter: Int?, recovered: Bool)? {
        guard case .command(let waiter, let recovered) = reply else { return nil }
        return (waiter, recovered)
    }

    @Test func theFirstCommandConnectsAndRepliesMatchCommandsInOrder() {
        var pipeline = Self.pipeline()
        #expect(Self.write(&pipeline, 1, now: 0) == (true, 50 * Self.ms))
        // Queued behind it while connecting; the timer is armed once.
        #expect(Self.write(&pipeline, 2, now: Self.ms) == (false, nil))
        #expect(pipeline.phase == .connecting)
        #expect(Self.connected(&pipeline))
        #expect(Self.write(&pipeline, 3, now: 2 * Self.ms) == (false, nil))
        #expect(pipeline.owed == 3)
        #expect(Self.answered(pipeline.received()) == 1)
        #expect(Self.answered(pipeline.received()) == 2)
        #expect(Self.answered(pipeline.received()) == 3)
        #expect(pipeline.owed == 0)
        guard case .unexpected = pipeline.received() else { Issue.record("a reply nobody asked for"); return }
    }

    @Test func theHandshakeIsAnsweredBeforeTheCommandsBehindIt() {
        var pipeline = Self.pipeline(handshakes: ["AUTH", "SELECT 2"])
        #expect(Self.write(&pipeline, 7, now: 0).connect)
        #expect(Self.connected(&pipeline))
        guard case .handshake("AUTH") = pipeline.received(), case .handshake("SELECT 2") = pipeline.received() else {
            Issue.record("the handshake first")
            return
        }
        #expect(Self.answered(pipeline.received()) == 7)
    }

    @Test func aConnectionGivenUpOnIsNotTakenWhenItComesLate() {
        var pipeline = Self.pipeline()
        _ = Self.write(&pipeline, 1, now: 0)
        #expect(pipeline.failed("cannot connect", now: 0, jitter: 0) == [1])
        #expect(!Self.connected(&pipeline))
    }

    @Test func aCommandPastItsDeadlineTimesOutAndItsLateReplyIsDropped() {
        var pipeline = Self.pipeline()
        _ = Self.write(&pipeline, 1, now: 0)
        #expect(Self.connected(&pipeline))
        _ = Self.write(&pipeline, 2, now: 30 * Self.ms)
        var fired = pipeline.timerFired(now: 50 * Self.ms)
        #expect(fired.expired == [1])
        #expect(!fired.stalled)
        // Wakes again for command 2's deadline.
        #expect(fired.wakeAt == 80 * Self.ms)
        #expect(pipeline.timerDeadline == 80 * Self.ms)
        // The late reply keeps its place: it is command 1's, handed to nobody, and 2's is 2's.
        let late = Self.command(pipeline.received())
        #expect(late?.waiter == nil && late?.recovered == true, "the late reply is dropped, and counts as Redis answering again")
        #expect(Self.answered(pipeline.received()) == 2)
        fired = pipeline.timerFired(now: 80 * Self.ms)
        #expect(fired.expired.isEmpty)
        #expect(fired.wakeAt == nil)
        #expect(pipeline.timerDeadline == nil)
        // The next command arms the timer again.
        #expect(Self.write(&pipeline, 3, now: 90 * Self.ms).arm == 140 * Self.ms)
    }

    @Test func aConnectionThatOwesRepliesPastTheStallLimitIsDropped() {
        var pipeline = Self.pipeline()
        // 20 timeouts, at least a second.
        #expect(pipeline.stallLimit == 1_000 * Self.ms)
        #expect(RedisPipeline<Int>(timeout: 100 * Self.ms).stallLimit == 2_000 * Self.ms)
        _ = Self.write(&pipeline, 1, now: 0)
        #expect(Self.connected(&pipeline))
        var fired = pipeline.timerFired(now: 50 * Self.ms)
        #expect(fired.expired == [1])
        #expect(fired.wakeAt == 1_050 * Self.ms)
        _ = Self.write(&pipeline, 2, now: 1_000 * Self.ms)
        fired = pipeline.timerFired(now: 1_050 * Self.ms)
        #expect(fired.expired == [2])
        #expect(fired.stalled)
        #expect(pipeline.failed("stalled", now: 1_050 * Self.ms, jitter: 0).isEmpty, "both were failed as timed out")
    }

    @Test func aFailureFailsEveryCommandOwedAndRefusesUntilTheBackOffEnds() {
        var pipeline = Self.pipeline()
        _ = Self.write(&pipeline, 1, now: 0)
        _ = Self.write(&pipeline, 2, now: 0)
        #expect(Self.connected(&pipeline))
        #expect(pipeline.failed("Redis closed the connection", now: 0, jitter: 0) == [1, 2])
        // 100 ms less an eighth, with no jitter.
        #expect(pipeline.phase == .backingOff(until: 88 * Self.ms))
        #expect(pipeline.send(3, now: 87 * Self.ms).send == .refuse("Redis closed the connection"))
        #expect(Self.write(&pipeline, 4, now: 88 * Self.ms).connect)
        #expect(pipeline.owed == 1)
    }

    @Test func theBackOffDoublesToTwoSecondsWithJitterAndResetsOnAnAnswer() {
        var pipeline = Self.pipeline()
        var now: Int64 = 0
        var delays: [Int64] = []
        for _ in 0..<7 {
            _ = Self.write(&pipeline, 1, now: now)
            _ = pipeline.failed("refused", now: now, jitter: 0.999)
            guard case .backingOff(let until) = pipeline.phase else { Issue.record("backing off"); return }
            delays.append((until - now) / Self.ms)
            now = until
        }
        // base − base/8 + up to base/4: 100 → 112, 200 → 224 … 2 s at most → 2 249.
        #expect(delays == [112, 224, 449, 899, 1_799, 2_249, 2_249])
        _ = Self.write(&pipeline, 1, now: now)
        #expect(Self.connected(&pipeline))
        let answer = Self.command(pipeline.received())
        #expect(answer?.waiter == 1 && answer?.recovered == true)
        _ = Self.write(&pipeline, 2, now: now)
        _ = pipeline.failed("refused", now: now, jitter: 0)
        #expect(pipeline.phase == .backingOff(until: now + 88 * Self.ms), "an answer starts the back-off over")
    }

    @Test func aQueueThatNeverDrainsIsStillMatchedInOrder() {
        var pipeline = Self.pipeline()
        _ = Self.write(&pipeline, 0, now: 0)
        #expect(Self.connected(&pipeline))
        // Always one owed: the queue compacts as it goes rather than growing.
        for waiter in 1..<5_000 {
            _ = Self.write(&pipeline, waiter, now: 0)
            #expect(Self.answered(pipeline.received()) == waiter - 1)
        }
        #expect(pipeline.owed == 1)
        #expect(Self.answered(pipeline.received()) == 4_999)
    }
}
