import GatehouseConfig
import GatehouseRateLimit
import GatehouseSecurity

/// The RateLimitPolicy rules that apply to this gateway, compiled: every rule whose `match` holds takes
/// one request from its counter for the request's key, in order, and the first one exhausted refuses the
/// request (a shadow rule only counts and logs). Rules are global, not per listener: a `match` on
/// `ports` is tested per request like any other condition.
public struct RateLimits: Sendable {
    public let rules: [RateLimitRule]
    /// One `PolicyRule` per rule (a rule without `match` has one that matches every request).
    public let matcher: RequestMatcher
    /// What each rule's counters are kept under, by rule index (see `CounterStore`).
    public let identities: [CounterIdentity]
    /// The policies that apply, `ns/name`, in order (for `explain` and `config_dump`).
    public let policies: [String]

    public static let empty = RateLimits(rules: [], matchRules: [], policies: [])

    public init(rules: [RateLimitRule], matchRules: [PolicyRule], policies: [String]) {
        precondition(rules.count == matchRules.count, "one match per rule")
        self.rules = rules
        matcher = RequestMatcher(matchRules)
        identities = rules.map { CounterIdentity(rule: $0.id, key: $0.keySpelling, algorithm: $0.algorithm) }
        self.policies = policies
        anyMatch = rules.contains { $0.hasMatch }
    }

    public var isEmpty: Bool { rules.isEmpty }
    /// Some rule has a `match`: the data plane builds the request's attributes for it.
    public let anyMatch: Bool
}

/// One rule of one RateLimitPolicy.
public final class RateLimitRule: Sendable {
    /// `ns/policy/rule`: the metric label, the access log's `ratelimit`, `explain`.
    public let id: String
    /// `ns/policy`.
    public let policy: String
    public let name: String
    /// The attributes joined into the counter's key; empty: one counter for all requests.
    public let key: [RateLimitKeyAttribute]
    /// The key as written (part of the counters' identity).
    public let keySpelling: [String]
    public let algorithm: RateLimitAlgorithm
    /// Count and log, never refuse.
    public let shadow: Bool
    public let hasMatch: Bool
    /// The policy's `allowedResponseHeaders`.
    public let allowedResponseHeaders: Bool

    public init(namespace: String, policy: String, name: String, key: [RateLimitKeyAttribute], keySpelling: [String],
                algorithm: RateLimitAlgorithm, shadow: Bool, hasMatch: Bool, allowedResponseHeaders: Bool) {
        id = "\(namespace)/\(policy)/\(name)"
        self.policy = "\(namespace)/\(policy)"
        self.name = name
        self.key = key
        self.keySpelling = keySpelling
        self.algorithm = algorithm
        self.shadow = shadow
        self.hasMatch = hasMatch
        self.allowedResponseHeaders = allowedResponseHeaders
    }

    /// `Second`/`Minute`/`Hour` limit or `Hour`/`Day`/`Month` quota, as `explain` and `config_dump` say it.
    public var summary: String {
        switch algorithm {
        case .bucket(let bucket):
            let unit = switch bucket.unitNanoseconds {
            case 1_000_000_000: "second"
            case 60_000_000_000: "minute"
            default: "hour"
            }
            return "limit \(bucket.requests)/\(unit), burst \(bucket.burst)"
        case .quota(let quota):
            return "quota \(quota.requests)/\(quota.period.rawValue.lowercased()) (\(quota.calendar.zoneName))"
        }
    }
}
