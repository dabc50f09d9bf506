/// A rule's arithmetic over the one word of state a store keeps per key: a token bucket's full-again
/// instant, or a quota's packed period and count. Every store (memory, SQLite, Redis) runs these same
/// functions, so they cannot disagree on what a limit means.
///
/// Instants are wall-clock nanoseconds since 1970: the state outlives the process (SQLite) and is
/// shared between hosts (Redis), so it cannot be on a monotonic clock.
public enum RateLimitAlgorithm: Sendable, Hashable {
    case bucket(TokenBucketPolicy)
    case quota(QuotaPolicy)

    /// The state of a key never seen: a full bucket, an unused quota.
    public static let initialState: Int64 = 0

    /// Requests per unit or per period, as `x-ratelimit-limit` reports it.
    public var limit: Int {
        switch self {
        case .bucket(let bucket): bucket.requests
        case .quota(let quota): quota.requests
        }
    }

    /// Takes one request at `now` from `state`. `window` is the quota's period holding `now` (ignored by
    /// a bucket; see `window(at:)`).
    public func take(state: Int64, now: Int64, window: QuotaWindow?) -> (state: Int64, decision: RateLimitDecision) {
        switch self {
        case .bucket(let bucket):
            return bucket.take(state: state, now: now)
        case .quota(let quota):
            let seconds = now / 1_000_000_000
            let window = window ?? quota.calendar.window(of: quota.period, containing: seconds)
            let (usage, decision) = quota.take(QuotaPolicy.Usage(packed: state), now: seconds, window: window)
            return (usage.packed, decision)
        }
    }

    /// Gives back a request `take` let through, when a later rule refused it: a refused request counts
    /// against no rule. A bucket's tokens refill anyway, so only a quota's count in the same period can
    /// be given back; a period that has ended meanwhile is left alone.
    public func refund(state: Int64, window: QuotaWindow?) -> Int64 {
        switch self {
        case .bucket(let bucket):
            return state - bucket.interval
        case .quota:
            let usage = QuotaPolicy.Usage(packed: state)
            guard let window, usage.windowStart == window.start, usage.count > 0 else { return state }
            return QuotaPolicy.Usage(windowStart: usage.windowStart, count: usage.count - 1).packed
        }
    }

    /// What the rule decides for a key whose stored counter is `state` at `now`, computed here without
    /// writing anything back (for `explain`, reading another process's counters): the figures a request
    /// now would get.
    public func decision(storedState state: Int64, now: Int64) -> RateLimitDecision {
        take(state: state, now: now, window: window(at: now)).decision
    }

    /// What `take` would say at `now` without taking (for `explain`): the requests left.
    public func remaining(state: Int64, now: Int64, window: QuotaWindow?) -> Int {
        switch self {
        case .bucket(let bucket):
            return bucket.remaining(state: state, now: now)
        case .quota(let quota):
            let usage = QuotaPolicy.Usage(packed: state)
            guard let window, usage.windowStart == window.start else { return quota.requests }
            return max(0, quota.requests - usage.count)
        }
    }

    /// The quota period holding `now` (nil for a bucket), for the caller to keep until it ends.
    public func window(at now: Int64) -> QuotaWindow? {
        guard case .quota(let quota) = self else { return nil }
        return quota.calendar.window(of: quota.period, containing: now / 1_000_000_000)
    }

    /// Whether `state` is as good as a key never seen, so the key can be forgotten: a full bucket, or a
    /// quota whose period is over.
    public func isIdle(state: Int64, now: Int64, window: QuotaWindow?) -> Bool {
        switch self {
        case .bucket: state <= now
        case .quota: window.map { QuotaPolicy.Usage(packed: state).windowStart < $0.start } ?? false
        }
    }
}
