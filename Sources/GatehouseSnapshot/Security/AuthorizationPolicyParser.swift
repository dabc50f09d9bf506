import Foundation
import GatehouseConfig
import GatehouseSecurity

/// An AuthorizationPolicy read once into the conditions the engine evaluates, with everything wrong with
/// it. Validation and compilation are this one pass, so they cannot disagree: a value that does not
/// parse is an error here, never a condition silently left out of the compiled rule.
struct ParsedPolicy: Sendable {
    struct Rule: Sendable {
        /// nil: no `from` (any source). Each entry is the conditions of one `from[].source`.
        var from: [[Condition]]?
        var to: [[Condition]]?
        var when: [Condition]
    }

    let resource: Resource<AuthorizationPolicySpec>
    /// nil for CUSTOM (refused at load).
    let action: PolicyAction?
    let rules: [Rule]
}

/// The AuthorizationPolicy parser: the rules' parser, plus the checks on the policy as a whole (action,
/// dry-run, the host-port trap).
typealias AuthorizationPolicyParser = PolicyRuleParser<AuthorizationPolicySpec>

extension PolicyRuleParser where Spec == AuthorizationPolicySpec {
    static func parse(_ policy: Resource<AuthorizationPolicySpec>) -> (ParsedPolicy, [Diagnostic]) {
        var parser = AuthorizationPolicyParser(policy: policy)
        let parsed = parser.parse()
        return (parsed, parser.diagnostics)
    }

    private mutating func parse() -> ParsedPolicy {
        let spec = policy.spec
        let action = spec.action ?? .ALLOW
        if action == .CUSTOM {
            report("spec.action", "CUSTOM (external authorization) is not supported by this version of Gatehouse; "
                + "refusing to load a policy it would not enforce")
        } else if spec.provider != nil {
            report("spec.provider", "provider is only valid with action CUSTOM")
        }
        if (spec.rules ?? []).isEmpty, action != .ALLOW {
            report(spec.rules == nil ? "spec" : "spec.rules",
                   "a \(action.rawValue) policy needs at least one rule (use rules: [{}] to match every request)")
        }
        if policy.namespace.isEmpty { report("metadata.namespace", "namespace must not be empty") }
        if let dryRun = policy.annotations["istio.io/dry-run"], dryRun == "true" {
            report("metadata.annotations",
                   "istio.io/dry-run policies are not evaluated by this version of Gatehouse; this policy is ignored",
                   severity: .warning)
        }
        var rules: [ParsedPolicy.Rule] = []
        for (index, rule) in (spec.rules ?? []).enumerated() {
            rules.append(parseRule(rule, "spec.rules[\(index)]"))
            hostPortTraps(rule, action: action, "spec.rules[\(index)]")
        }
        let engineAction: PolicyAction? = switch action {
        case .DENY: .deny
        case .AUDIT: .audit
        case .CUSTOM: nil
        default: .allow
        }
        return ParsedPolicy(resource: policy, action: engineAction, rules: rules)
    }

    /// `hosts` match the Host header exactly, port included (Istio's semantics, kept): a DENY on
    /// `a.com` does not deny `Host: a.com:8080`, and an ALLOW with `notHosts: [a.com]` lets it in. Istio
    /// accepts this and so does Gatehouse, with a warning naming the value to add (ISTIO-SECURITY-2021-008).
    private mutating func hostPortTraps(_ rule: AuthorizationPolicySpec.Rule, action: AuthorizationPolicySpec.Action,
                                        _ path: String) {
        for (index, entry) in (rule.to ?? []).enumerated() {
            guard let operation = entry.operation else { continue }
            let (field, values): (String, [String]?) = switch action {
            case .DENY: ("hosts", operation.hosts)
            case .ALLOW: ("notHosts", operation.notHosts)
            default: ("", nil)
            }
            guard let values else { continue }
            for (valueIndex, value) in values.enumerated() where !value.hasSuffix("*") && !value.contains(":") {
                let verb = action == .DENY ? "is not denied" : "is allowed"
                let example = value.hasPrefix("*") ? "x" + value.dropFirst() : value
                // `*` may stand at one end only, so a suffix pattern takes its ports one by one.
                let advice: String
                if value.hasPrefix("*") {
                    guard !values.contains(where: { $0.hasPrefix("\(value):") }) else { continue }
                    advice = "add the ports clients may send, e.g. \"\(value):8080\""
                } else {
                    guard !values.contains("\(value):*") else { continue }
                    advice = "add \"\(value):*\" as well"
                }
                report("\(path).to[\(index)].operation.\(field)[\(valueIndex)]",
                       "\"\(value)\" matches the Host header exactly, port included: a request with Host \"\(example):8080\" "
                           + "\(verb) by this rule; \(advice) (ISTIO-SECURITY-2021-008)", severity: .warning)
            }
        }
    }

}
