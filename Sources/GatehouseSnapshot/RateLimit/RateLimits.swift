import GatehouseConfig
import GatehouseRateLimit
import GatehouseRouting
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

/// One rule: of a RateLimitPolicy, or an EnvoyFilter's local rate limit (Istio's recipe).
public final class RateLimitRule: Sendable {
    /// `ns/policy/rule` (`ns/envoyfilter/stat_prefix` for an EnvoyFilter): the metric label, the access
    /// log's `ratelimit`, `explain`.
    public let id: String
    /// `ns/policy` (or `ns/envoyfilter`).
    public let policy: String
    public let name: String
    /// The attributes joined into the counter's key; empty: one counter for all requests.
    public let key: [RateLimitKeyAttribute]
    /// The key as written (part of the counters' identity).
    public let keySpelling: [String]
    public let algorithm: RateLimitAlgorithm
    public let hasMatch: Bool
    /// Where the rule applies (an EnvoyFilter's listener port, virtual host, route); nil: everywhere.
    public let scope: RateLimitScope?
    /// Routes an EnvoyFilter's filter-wide bucket leaves to their own per-route configuration.
    public let exclusions: [RateLimitScope]
    /// The share of requests the rule applies to, and of those the share it refuses when exhausted, in
    /// parts per million (Envoy's `filter_enabled`, `filter_enforced`). A shadow rule enforces none.
    public let enabledPerMillion: UInt32
    public let enforcedPerMillion: UInt32
    /// What a refusal looks like, and what an allowed response carries.
    public let reply: RateLimitReply
    /// An EnvoyFilter per-route bucket with descriptors: when it applies, by the request's descriptors.
    public let descriptors: DescriptorMatch?

    public init(namespace: String, policy: String, name: String, key: [RateLimitKeyAttribute], keySpelling: [String],
                algorithm: RateLimitAlgorithm, shadow: Bool, hasMatch: Bool, allowedResponseHeaders: Bool) {
        id = "\(namespace)/\(policy)/\(name)"
        self.policy = "\(namespace)/\(policy)"
        self.name = name
        self.key = key
        self.keySpelling = keySpelling
        self.algorithm = algorithm
        self.hasMatch = hasMatch
        scope = nil
        exclusions = []
        enabledPerMillion = Self.all
        enforcedPerMillion = shadow ? 0 : Self.all
        var reply = RateLimitReply()
        reply.allowedHeaders = allowedResponseHeaders
        self.reply = reply
        descriptors = nil
    }

    /// An EnvoyFilter's local rate limit: one bucket (`key` empty) for the requests in `scope`.
    public init(envoyFilter namespace: String, name filter: String, statPrefix: String, algorithm: RateLimitAlgorithm,
                scope: RateLimitScope?, exclusions: [RateLimitScope], enabledPerMillion: UInt32, enforcedPerMillion: UInt32,
                reply: RateLimitReply, descriptors: DescriptorMatch? = nil) {
        self.descriptors = descriptors
        id = "\(namespace)/\(filter)/\(statPrefix)"
        policy = "\(namespace)/\(filter)"
        name = statPrefix
        key = []
        keySpelling = []
        self.algorithm = algorithm
        hasMatch = false
        self.scope = scope
        self.exclusions = exclusions
        self.enabledPerMillion = enabledPerMillion
        self.enforcedPerMillion = enforcedPerMillion
        self.reply = reply
    }

    public static let all: UInt32 = 1_000_000

    /// Counts and logs, never refuses.
    public var shadow: Bool { enforcedPerMillion == 0 }

    /// Whether the rule applies to a request on listener `port`, in `virtualHost`, taking `route`.
    public func applies(port: Int, virtualHost: VirtualHost?, route: Route?) -> Bool {
        if let scope, !scope.contains(port: port, virtualHost: virtualHost, route: route) { return false }
        return !exclusions.contains { $0.contains(port: port, virtualHost: virtualHost, route: route) }
    }

    /// The limit as `explain` and `config_dump` say it.
    public var summary: String {
        switch algorithm {
        case .bucket(let bucket):
            if scope != nil || !exclusions.isEmpty || reply.envoyRateLimited {
                return "local rate limit \(bucket.burst) tokens, \(bucket.requests) per "
                    + "\(Double(bucket.unitNanoseconds) / 1e9)s"
            }
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

/// The requests an EnvoyFilter patch reaches: a listener port (HTTP_FILTER `listener.portNumber`), or
/// routes (HTTP_ROUTE `routeConfiguration`: `portNumber`, `vhost.name` as Istio names a gateway's
/// virtual hosts, `HOST:PORT`, and `vhost.route.name` / `action`). A field left out matches anything.
public struct RateLimitScope: Sendable, Hashable {
    public enum Action: Sendable, Hashable { case route, redirect, directResponse }

    public var port: Int?
    /// The virtual host's domain as the VirtualService names it (`bookinfo.com`, `*`), lowercased.
    public var virtualHost: String?
    public var routeName: String?
    public var action: Action?
    /// A per-route scope only holds requests that took a route.
    public var needsRoute: Bool

    public init(port: Int? = nil, virtualHost: String? = nil, routeName: String? = nil, action: Action? = nil,
                needsRoute: Bool = false) {
        self.port = port
        self.virtualHost = virtualHost
        self.routeName = routeName
        self.action = action
        self.needsRoute = needsRoute
    }

    public func contains(port: Int, virtualHost: VirtualHost?, route: Route?) -> Bool {
        if let wanted = self.port, wanted != port { return false }
        if needsRoute, route == nil { return false }
        if let wanted = self.virtualHost, virtualHost?.domain.lowercased() != wanted { return false }
        if let wanted = routeName, route?.name != wanted { return false }
        if let action {
            switch (action, route?.action) {
            case (.route, .forward?), (.redirect, .redirect?), (.directResponse, .directResponse?): break
            default: return false
            }
        }
        return true
    }
}

/// Envoy's local rate limit descriptors, per route: the route's `rate_limits` actions make the request's
/// descriptors (one per rate limit whose actions all produce an entry); a descriptor bucket applies when
/// one of them equals its `entries`, the route's default bucket always (Envoy's
/// `always_consume_default_token_bucket`, default true) or only when no descriptor bucket matched.
public struct DescriptorMatch: Sendable {
    /// The route's rate limits, each a list of actions.
    public var actions: [[DescriptorAction]]
    /// This bucket's entries; nil for the route's default bucket.
    public var entries: [DescriptorEntry]?
    /// For the default bucket: the descriptor buckets' entries, and whether it applies only when none of
    /// them matched.
    public var siblings: [[DescriptorEntry]]
    public var onlyWhenNoneMatched: Bool

    public init(actions: [[DescriptorAction]], entries: [DescriptorEntry]?, siblings: [[DescriptorEntry]] = [],
                onlyWhenNoneMatched: Bool = false) {
        self.actions = actions
        self.entries = entries
        self.siblings = siblings
        self.onlyWhenNoneMatched = onlyWhenNoneMatched
    }
}

public struct DescriptorEntry: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// One rate-limit action of a route: what entry it adds to the request's descriptor.
public enum DescriptorAction: Sendable, Hashable {
    /// The header's value (`:path`, `:authority`, `:method` and `:scheme` too); absent: no descriptor,
    /// unless `skipIfAbsent`, which leaves the entry out.
    case requestHeader(name: String, key: String, skipIfAbsent: Bool)
    /// `remote_address`: the client's address (X-Forwarded-For and `numTrustedProxies`).
    case remoteAddress
    case genericKey(key: String, value: String)
}

/// What a rule's refusal is, and what it adds to the responses it lets through.
public struct RateLimitReply: Sendable {
    public var status = 429
    /// `x-ratelimit-limit`, `-remaining`, `-reset` on the refusal.
    public var limitHeaders = true
    public var retryAfter = true
    /// The same headers on responses the rule let through.
    public var allowedHeaders = true
    /// Added to the refusal (an EnvoyFilter's `response_headers_to_add`).
    public var headers: [(name: String, value: String)] = []
    /// `x-envoy-ratelimited: true`, as Envoy's local rate limit sets it.
    public var envoyRateLimited = false
    /// Answered to a gRPC request: UNAVAILABLE (14), or RESOURCE_EXHAUSTED (8) when the EnvoyFilter asks.
    public var grpcStatus = 14

    public init() {}
}
