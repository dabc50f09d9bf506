import GatehouseConfig
import GatehouseRateLimit
import GatehouseSecurity

/// A RateLimitPolicy read once: each rule's `match` parsed as an AuthorizationPolicy rule (nil: none),
/// with its diagnostics, by the same parser AuthorizationPolicy uses.
struct ParsedRateLimitPolicy: Sendable {
    let resource: Resource<RateLimitPolicySpec>
    let matches: [ParsedPolicy.Rule?]

    static func parse(_ policy: Resource<RateLimitPolicySpec>) -> (ParsedRateLimitPolicy, [Diagnostic]) {
        var parser = PolicyRuleParser(policy: policy)
        let matches = (policy.spec.rules ?? []).enumerated().map { index, rule in
            rule.match.map { parser.parseRule($0, "spec.rules[\(index)].match") }
        }
        return (ParsedRateLimitPolicy(resource: policy, matches: matches), parser.diagnostics)
    }
}

/// Compiles the RateLimitPolicies that apply to this gateway (scoped as AuthorizationPolicies are:
/// namespace, selector, targetRef) into `RateLimits`, in (namespace, name) order and rule order within.
enum RateLimitCompiler {
    static func compile(_ parsed: [ParsedRateLimitPolicy], scope: SecurityCompiler, set: ConfigSet) -> RateLimits {
        let applicable = parsed.filter { policy in
            let spec = policy.resource.spec
            return scope.applies(namespace: policy.resource.namespace, selector: spec.selector, targetRef: spec.targetRef,
                                 targetRefs: spec.targetRefs)
        }.sorted { ($0.resource.namespace, $0.resource.name) < ($1.resource.namespace, $1.resource.name) }
        var rules: [RateLimitRule] = []
        var matchRules: [PolicyRule] = []
        for policy in applicable {
            let resource = policy.resource
            for (index, rule) in (resource.spec.rules ?? []).enumerated() {
                guard let name = rule.name, let algorithm = algorithm(of: rule) else { continue }
                let spelling = rule.key ?? []
                let match = policy.matches[index]
                rules.append(RateLimitRule(
                    namespace: resource.namespace, policy: resource.name, name: name,
                    key: spelling.compactMap(RateLimitKeyAttribute.init), keySpelling: spelling, algorithm: algorithm,
                    shadow: rule.shadow ?? false, hasMatch: match != nil,
                    allowedResponseHeaders: resource.spec.allowedResponseHeaders ?? true))
                // The label's action is not read for a match; its names show in `explain`.
                let label = RuleLabel(namespace: resource.namespace, name: resource.name, action: .allow, ruleIndex: index)
                matchRules.append(PolicyRule(label: label, from: match?.from, to: match?.to, when: match?.when ?? []))
            }
        }
        let filters = EnvoyFilterRateLimits.compile(set)
        for rule in filters.rules {
            rules.append(rule)
            let label = RuleLabel(namespace: "", name: rule.policy, action: .allow, ruleIndex: nil)
            matchRules.append(PolicyRule(label: label, from: nil, to: nil, when: []))
        }
        return RateLimits(rules: rules, matchRules: matchRules, policies: applicable.map(\.resource.id) + filters.filters)
    }

    /// The rule's arithmetic; nil only for a rule validation refused.
    static func algorithm(of rule: RateLimitPolicySpec.Rule) -> RateLimitAlgorithm? {
        if let limit = rule.limit, let requests = limit.requests, let unit = limit.unit, requests > 0 {
            return .bucket(TokenBucketPolicy(requests: Int(requests), unitNanoseconds: unit.nanoseconds,
                                             burst: limit.burst.map { Int($0) }))
        }
        if let quota = rule.quota, let requests = quota.requests, let period = quota.period,
           let calendar = QuotaCalendar(timeZone: quota.timeZone ?? "UTC"),
           let quotaPeriod = QuotaPeriod(rawValue: period.rawValue), requests > 0, requests < Int64(UInt32.max) {
            return .quota(QuotaPolicy(requests: Int(requests), period: quotaPeriod, calendar: calendar))
        }
        return nil
    }
}
