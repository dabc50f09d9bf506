/// A `limit` rule: a token bucket holding up to `burst` requests, refilled at `requests` per unit.
///
/// It is kept as the generic cell rate algorithm (GCRA): the whole state is one instant, the
/// "theoretical arrival time" at which the bucket would be full again, so a store keeps one integer per
/// key (an atomic, a row, a Redis value) and every store runs this same arithmetic. In any window of
/// one unit, at most `requests` + `burst` requests pass: `burst` at once from a full bucket, and the
/// refill over the unit.
public struct TokenBucketPolicy: Sendable, Hashable {
    public var requests: Int
    public var unitNanoseconds: Int64
    public var burst: Int
    /// The length of the clock's tick the instants are in: 1 (nanoseconds) everywhere but Redis, whose
    /// Lua keeps them in microseconds (see `RedisRateLimitScript`). Only the seconds reported use it.
    public var nanosecondsPerTick: Int64 = 1

    /// `burst` nil: a whole unit's worth (`requests`) may come at once.
    public init(requests: Int, unitNanoseconds: Int64, burst: Int? = nil) {
        precondition(requests > 0 && unitNanoseconds > 0, "validated at load: a positive rate")
        self.requests = requests
        self.unitNanoseconds = unitNanoseconds
        // A burst whose refill outlasts a century is as good as unbounded; capping it keeps the
        // full-again instant far from overflowing (load-time checks refuse such values anyway).
        let interval = max(1, unitNanoseconds / Int64(requests))
        self.burst = min(max(1, burst ?? requests), Int(Self.longestRefill / interval) + 1)
    }

    /// A hundred years, in nanoseconds: the longest a bucket may take to refill from empty.
    public static let longestRefill: Int64 = 100 * 365 * 86_400 * 1_000_000_000

    /// Time one request takes from the bucket (the refill of one token).
    public var interval: Int64 { max(1, unitNanoseconds / Int64(requests)) }

    /// How far ahead of now the full-again instant may run while a request still passes.
    var tolerance: Int64 { Int64(burst - 1) * interval }

    /// Takes one token at `now` (nanoseconds on any clock the state was kept on) from a bucket whose
    /// full-again instant is `state` (0 or any past instant: full). Returns the new state, which is
    /// `state` itself when the request is refused.
    public func take(state: Int64, now: Int64) -> (state: Int64, decision: RateLimitDecision) {
        let start = max(state, now)
        guard start - now <= tolerance else {
            let wait = start - now - tolerance
            return (state, RateLimitDecision(allowed: false, limit: requests, remaining: 0,
                                             resetSeconds: RateLimitDecision.seconds(ceilingOf: (start - now) * nanosecondsPerTick),
                                             retryAfterSeconds: RateLimitDecision.seconds(ceilingOf: wait * nanosecondsPerTick)))
        }
        let next = start + interval
        return (next, RateLimitDecision(allowed: true, limit: requests, remaining: remaining(state: next, now: now),
                                        resetSeconds: RateLimitDecision.seconds(ceilingOf: (next - now) * nanosecondsPerTick),
                                        retryAfterSeconds: 0))
    }

    /// Whole tokens in the bucket at `now`.
    public func remaining(state: Int64, now: Int64) -> Int {
        let owed = max(0, state - now)
        // Tokens used are owed / interval, rounded up: a token half refilled cannot be taken yet.
        let used = (owed + interval - 1) / interval
        return max(0, burst - Int(used))
    }
}
