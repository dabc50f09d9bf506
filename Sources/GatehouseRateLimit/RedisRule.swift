/// A rule as the `redis` store sends it, made once per snapshot on each event loop: what every key of
/// the rule starts with, and the arguments that are the same for every request, already in RESP, so a
/// request's command is mostly copied rather than formatted; and the rule's current quota period.
/// Confined to its loop.
public final class RedisRule {
    public let identity: CounterIdentity
    /// The rule's bucket with instants in microseconds; nil for a quota.
    let microBucket: TokenBucketPolicy?
    /// `namespace(of:)` and a colon.
    let keyPrefix: [UInt8]
    /// kind, bound and step (see `RedisRateLimitScript.source`), as RESP bulk strings.
    let constantArguments: [UInt8]
    private var windows = QuotaWindowCache()

    public init(_ identity: CounterIdentity) {
        self.identity = identity
        keyPrefix = Array((RedisRateLimitScript.namespace(of: identity) + ":").utf8)
        var writer = RESPCommandWriter(capacity: 64)
        switch identity.algorithm {
        case .bucket(let bucket):
            let micro = RedisRateLimitScript.microsecondBucket(bucket)
            microBucket = micro
            writer.argument("b")
            writer.argument(micro.tolerance)
            writer.argument(micro.interval)
        case .quota(let quota):
            microBucket = nil
            writer.argument("q")
            writer.argument(Int64(quota.requests))
            writer.argument(1)
        }
        constantArguments = writer.bytes
    }

    /// The quota period holding `now`; nil for a bucket.
    func window(at now: Int64) -> QuotaWindow? { windows.window(of: identity.algorithm, at: now) }
}

/// One rule's share of a request, as the `redis` store takes it: the rule, the request's key, and
/// whether a refusal by this rule refuses the request (a shadow rule, or one a partial
/// `filter_enforced` did not draw, only counts).
public struct RedisTake {
    public var rule: RedisRule
    public var key: String
    public var enforced: Bool

    public init(rule: RedisRule, key: String, enforced: Bool) {
        self.rule = rule
        self.key = key
        self.enforced = enforced
    }

    /// The start of a quota's period holding `now` (seconds since 1970), which its Redis key names;
    /// nil for a limit.
    func periodStart(now: Int64) -> Int64? { rule.window(at: now)?.start }
}
