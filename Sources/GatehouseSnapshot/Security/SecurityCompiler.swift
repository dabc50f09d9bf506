import GatehouseConfig
import GatehouseSecurity

/// Compiles the AuthorizationPolicies and RequestAuthentications that apply to this gateway. Scope is
/// Istio's: the gateway's own namespace or the root namespace, and a `selector` that matches the
/// Bootstrap labels (none = every workload) or a `targetRef` to the gateway (kind Gateway, the
/// Bootstrap's name). Everything else is dropped here, so it costs a request nothing.
struct SecurityCompiler {
    let settings: GatewaySettings
    let parsed: ParsedSecurity
    /// Policies in evaluation order; picked once, then compiled for each listener.
    private(set) var applicablePolicies: [ParsedPolicy] = []

    init(parsed: ParsedSecurity, settings: GatewaySettings) {
        self.parsed = parsed
        self.settings = settings
        applicablePolicies = parsed.policies.filter { parsed in
            let policy = parsed.resource
            return policy.annotations["istio.io/dry-run"] != "true" && parsed.action != nil
                && applies(namespace: policy.namespace, selector: policy.spec.selector, targetRef: policy.spec.targetRef,
                           targetRefs: policy.spec.targetRefs)
        }.sorted { ($0.resource.namespace, $0.resource.name) < ($1.resource.namespace, $1.resource.name) }
    }

    func applies(namespace: String, selector: WorkloadSelector?, targetRef: PolicyTargetReference?,
                 targetRefs: [PolicyTargetReference]?) -> Bool {
        GatewayScope(namespace: settings.namespace, rootNamespace: settings.rootNamespace, name: settings.gatewayName,
                     labels: settings.labels)
            .admits(namespace: namespace, selector: selector?.matchLabels,
                    targetRefs: (targetRefs ?? []) + (targetRef.map { [$0] } ?? []))
    }

    /// The engine for one listener port: rules that can never match that port are left out, but an
    /// ALLOW policy still counts as present (so its other-port rules still deny here, as in Istio).
    func authorization(port: Int, tcp: Bool = false) -> AuthorizationEngine {
        let policies = applicablePolicies
        guard !policies.isEmpty else { return .empty }
        var rules: [PolicyRule] = []
        var hasAllow = false
        var allowNothing: RuleLabel?
        for policy in policies {
            guard let action = policy.action else { continue }
            let resource = policy.resource
            if action == .allow { hasAllow = true }
            if policy.rules.isEmpty, action == .allow, allowNothing == nil {
                allowNothing = RuleLabel(namespace: resource.namespace, name: resource.name, action: .allow, ruleIndex: nil)
            }
            for (index, rule) in policy.rules.enumerated() {
                let label = RuleLabel(namespace: resource.namespace, name: resource.name, action: action, ruleIndex: index)
                guard let compiled = compile(rule, label: label, port: port) else { continue }
                if let applied = tcp ? compiled.forTCP() : compiled { rules.append(applied) }
            }
        }
        return AuthorizationEngine(rules: rules, policies: policies.map(\.resource.id), hasAllowPolicy: hasAllow,
                                   allowNothing: allowNothing)
    }

    /// nil when the rule can never match on `port`.
    func compile(_ rule: ParsedPolicy.Rule, label: RuleLabel, port: Int) -> PolicyRule? {
        var to: [[Condition]]?
        if let entries = rule.to {
            let live = entries.compactMap { pruned($0, port: port) }
            if live.isEmpty { return nil }
            to = live
        }
        guard let liveWhen = pruned(rule.when, port: port) else { return nil }
        return PolicyRule(label: label, from: rule.from, to: to, when: liveWhen)
    }

    /// Port tests are decided here, once per listener: a false one kills the entry (nil), a true one is
    /// dropped.
    func pruned(_ conditions: [Condition], port: Int) -> [Condition]? {
        var live: [Condition] = []
        for condition in conditions {
            guard case .ports(let ports) = condition.test else {
                live.append(condition)
                continue
            }
            if ports.contains(port) == condition.negated { return nil }
        }
        return live
    }

    /// The JWT rules of every RequestAuthentication that applies, in (namespace, name) order.
    var authentication: RequestAuthenticator {
        let resources = parsed.authentications.filter {
            applies(namespace: $0.resource.namespace, selector: $0.resource.spec.selector,
                    targetRef: $0.resource.spec.targetRef, targetRefs: $0.resource.spec.targetRefs)
        }.sorted { ($0.resource.namespace, $0.resource.name) < ($1.resource.namespace, $1.resource.name) }
        return RequestAuthenticator(rules: resources.flatMap(\.rules))
    }
}

/// Every AuthorizationPolicy, RequestAuthentication and RateLimitPolicy of a config, parsed once (all of them, applicable
/// or not: a broken policy in another namespace is still an error), with their diagnostics.
public struct ParsedSecurity: Sendable {
    struct Authentication: Sendable {
        let resource: Resource<RequestAuthenticationSpec>
        let rules: [JWTRule]
    }

    let policies: [ParsedPolicy]
    let authentications: [Authentication]
    /// RateLimitPolicies: their rules' `match` is in AuthorizationPolicy form, parsed by the same parser.
    let rateLimitPolicies: [ParsedRateLimitPolicy]
    public let diagnostics: [Diagnostic]

    public init(_ set: ConfigSet) {
        var diagnostics: [Diagnostic] = []
        policies = set.authorizationPolicies.map { policy in
            let (parsed, found) = AuthorizationPolicyParser.parse(policy)
            diagnostics += found
            return parsed
        }
        authentications = set.requestAuthentications.map { resource in
            let (rules, found) = RequestAuthenticationParser.parse(resource)
            diagnostics += found
            return Authentication(resource: resource, rules: rules)
        }
        rateLimitPolicies = set.rateLimitPolicies.map { resource in
            let (parsed, found) = ParsedRateLimitPolicy.parse(resource)
            diagnostics += found
            return parsed
        }
        self.diagnostics = diagnostics
    }
}
