/// The AuthorizationPolicies that apply to one listener, compiled. Evaluation follows Istio: any matching
/// DENY rule denies; otherwise, with no ALLOW policy the request is allowed; otherwise some ALLOW rule must
/// match. AUDIT rules only mark the request.
///
/// Rules are indexed by the host and the path directory they require (`RuleSet`), so a request only
/// tests the rules that could apply to its `Host` and path: adding policies for other hosts or other
/// paths costs it next to nothing.
public struct AuthorizationEngine: Sendable {
    /// The policies that apply, in evaluation order (for `explain` and `config_dump`).
    public let policies: [String]
    let deny: RuleSet
    let allow: RuleSet
    let audit: RuleSet
    /// Some ALLOW policy applies (even one whose rules can never match this listener).
    let hasAllowPolicy: Bool
    /// An ALLOW policy without rules ("allow-nothing"), reported when no ALLOW rule matched.
    let allowNothing: RuleLabel?

    public static let empty = AuthorizationEngine(rules: [], policies: [], hasAllowPolicy: false, allowNothing: nil)

    public init(rules: [PolicyRule], policies: [String], hasAllowPolicy: Bool, allowNothing: RuleLabel?) {
        self.policies = policies
        deny = RuleSet(rules.filter { $0.label.action == .deny })
        allow = RuleSet(rules.filter { $0.label.action == .allow })
        audit = RuleSet(rules.filter { $0.label.action == .audit })
        self.hasAllowPolicy = hasAllowPolicy
        self.allowNothing = allowNothing
    }

    /// Rules compiled for this listener, of every action.
    public var ruleCount: Int { deny.rules.count + allow.rules.count + audit.rules.count }

    /// No policy applies: the data plane skips building the request attributes.
    public var isEmpty: Bool { policies.isEmpty }

    /// `observe`, when given, sees every candidate rule with why it did (nil) or did not match; the
    /// decision is the same with or without it.
    public func evaluate(_ request: AuthorizationRequest,
                         observe: ((PolicyRule, RuleMismatch?) -> Void)? = nil) -> AuthorizationDecision {
        let host = ASCIICase.lowercased(request.host)
        let key = HostKey.name(of: host)
        let audited = audit.firstMatch(request, host: host, key: key, observe: observe)
        if let denied = deny.firstMatch(request, host: host, key: key, observe: observe) {
            if observe != nil { _ = allow.firstMatch(request, host: host, key: key, observe: observe) }
            return AuthorizationDecision(allowed: false, reason: .deniedByRule, rule: denied.label, audit: audited?.label)
        }
        guard hasAllowPolicy else {
            return AuthorizationDecision(allowed: true, reason: .noAllowPolicy, rule: nil, audit: audited?.label)
        }
        if let allowed = allow.firstMatch(request, host: host, key: key, observe: observe) {
            return AuthorizationDecision(allowed: true, reason: .allowedByRule, rule: allowed.label, audit: audited?.label)
        }
        let onlyNothing = allowNothing != nil && allow.rules.isEmpty
        return AuthorizationDecision(allowed: false, reason: onlyNothing ? .allowNothing : .noAllowMatched,
                                     rule: onlyNothing ? allowNothing : nil, audit: audited?.label)
    }
}

public struct AuthorizationDecision: Sendable {
    public enum Reason: Sendable {
        case noAllowPolicy, allowedByRule, deniedByRule, noAllowMatched, allowNothing
    }

    public var allowed: Bool
    public var reason: Reason
    /// The rule that decided: the matching DENY or ALLOW rule, or the allow-nothing policy.
    public var rule: RuleLabel?
    public var audit: RuleLabel?

    /// The access log's `authz_policy`: `ns/name[rule N]`, `allow-nothing`, `default-deny`, or nil when no
    /// policy decided.
    public var logName: String? {
        switch reason {
        case .noAllowPolicy: nil
        case .allowedByRule, .deniedByRule: rule?.logName
        case .allowNothing: "allow-nothing"
        case .noAllowMatched: "default-deny"
        }
    }

    /// Envoy's `response_code_details` for a denial.
    public var responseCodeDetails: String {
        reason == .deniedByRule ? "rbac_access_denied_matched_policy[\(rule?.envoyID ?? "none")]"
            : "rbac_access_denied_matched_policy[none]"
    }
}
