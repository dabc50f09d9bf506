/// gatehouse.dev RateLimitPolicy (DESIGN §4): rules that limit or meter requests by a key made of
/// request attributes, scoped like an AuthorizationPolicy.
public struct RateLimitPolicySpec: Decodable, Sendable, Hashable {
    public var selector: WorkloadSelector?
    public var targetRef: PolicyTargetReference?
    public var targetRefs: [PolicyTargetReference]?
    public var rules: [Rule]?
    /// `x-ratelimit-limit`, `-remaining` and `-reset` on the responses the rules let through too (a 429
    /// always has them); default true.
    public var allowedResponseHeaders: Bool?

    public struct Rule: Decodable, Sendable, Hashable {
        /// Unique in the policy: metrics, the access log and `explain` name the rule `ns/policy/rule`.
        public var name: String?
        /// One AuthorizationPolicy rule (`from`, `to`, `when`); unset: every request.
        public var match: AuthorizationPolicySpec.Rule?
        /// Request attributes joined into the counter's key; empty: one counter for every request.
        public var key: [String]?
        public var limit: Limit?
        public var quota: Quota?
        /// Count and log, never reject.
        public var shadow: Bool?
    }

    /// A token bucket: `requests` per `unit`, up to `burst` at once.
    public struct Limit: Decodable, Sendable, Hashable {
        public var requests: Int64?
        public var unit: Unit?
        public var burst: Int64?
    }

    public enum Unit: String, ConfigEnum {
        case Second, Minute, Hour

        public var nanoseconds: Int64 {
            switch self {
            case .Second: 1_000_000_000
            case .Minute: 60_000_000_000
            case .Hour: 3_600_000_000_000
            }
        }
    }

    /// `requests` per calendar `period`, in UTC or `timeZone`.
    public struct Quota: Decodable, Sendable, Hashable {
        public var requests: Int64?
        public var period: Period?
        public var timeZone: String?
    }

    public enum Period: String, ConfigEnum { case Hour, Day, Month }
}

/// The request attributes a rule's `key` may name.
public enum RateLimitKeyAttribute: Sendable, Hashable {
    case sourceIP, remoteIP, sourcePrincipal, requestPrincipal, host, route, connectionSNI
    case claim(String)
    case header(String)

    /// `request.headers[x-api-key]`, `request.auth.claims[sub]`, `source.ip`…; nil when it names none.
    public init?(_ text: String) {
        switch text {
        case "source.ip": self = .sourceIP
        case "remote.ip": self = .remoteIP
        case "source.principal": self = .sourcePrincipal
        case "request.auth.principal": self = .requestPrincipal
        case "host": self = .host
        case "route": self = .route
        case "connection.sni": self = .connectionSNI
        default:
            if let name = Self.bracketed(text, prefix: "request.headers[") {
                guard name.allSatisfy(\.isHTTPTokenCharacter) else { return nil }
                self = .header(name.lowercased())
            } else if let name = Self.bracketed(text, prefix: "request.auth.claims[") {
                self = .claim(name)
            } else {
                return nil
            }
        }
    }

    static let names = ["source.ip", "remote.ip", "source.principal", "request.auth.principal",
                        "request.auth.claims[NAME]", "request.headers[NAME]", "connection.sni", "host", "route"]

    private static func bracketed(_ text: String, prefix: String) -> String? {
        guard text.hasPrefix(prefix), text.hasSuffix("]"), text.count > prefix.count + 1 else { return nil }
        return String(text.dropFirst(prefix.count).dropLast())
    }
}
