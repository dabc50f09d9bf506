/// What a rule says of one request: let through or not, and the figures the `x-ratelimit-*` and
/// `retry-after` headers report.
public struct RateLimitDecision: Sendable, Equatable {
    public var allowed: Bool
    /// The rule's limit: requests per unit for a token bucket, per period for a quota.
    public var limit: Int
    /// Requests still allowed now, after this one if it was allowed.
    public var remaining: Int
    /// Seconds until the limit is whole again: the bucket full, or the quota's period over.
    public var resetSeconds: Int
    /// Seconds until a request would be allowed (`retry-after`); 0 when this one was.
    public var retryAfterSeconds: Int

    public init(allowed: Bool, limit: Int, remaining: Int, resetSeconds: Int, retryAfterSeconds: Int) {
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.resetSeconds = resetSeconds
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// Whole seconds, rounded up: a client told 0 while time is left would come back too early.
    static func seconds(ceilingOf nanoseconds: Int64) -> Int {
        guard nanoseconds > 0 else { return 0 }
        return Int((nanoseconds + 999_999_999) / 1_000_000_000)
    }
}
