import Foundation
import GatehouseSecurity

/// Istio's AuthorizationPolicy validation (errors: what Istio refuses), plus the mistakes Istio accepts
/// but that make a value never match or mean something else than its author thinks (a regex where a glob is
/// expected, a `*` in the middle, a `spiffe://` principal, a lowercase method). Those load, as in Istio, and
/// Gatehouse matches them exactly as Istio does; each gets a warning saying why and what was probably
/// meant, and `validate --strict` turns the warnings into errors for CI.
enum AuthorizationPolicyChecks {
    /// What a value check found: a value Istio refuses, or one Istio accepts that never matches.
    struct ValueProblem {
        var message: String
        var severity: Diagnostic.Severity

        static func refused(_ message: String) -> ValueProblem { .init(message: message, severity: .error) }
        static func neverMatches(_ message: String) -> ValueProblem { .init(message: message, severity: .warning) }
    }

    static func check(_ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let spec = policy.spec
        out += SecurityScopeChecks.check(policy, selector: spec.selector, targetRef: spec.targetRef,
                                         targetRefs: spec.targetRefs)
        let action = spec.action ?? .ALLOW
        if action == .CUSTOM {
            out.append(policy.diagnostic("spec.action",
                "CUSTOM (external authorization) is not supported by this version of Gatehouse; refusing to load "
                    + "a policy it would not enforce"))
        } else if spec.provider != nil {
            out.append(policy.diagnostic("spec.provider", "provider is only valid with action CUSTOM"))
        }
        if (spec.rules ?? []).isEmpty, action != .ALLOW {
            out.append(policy.diagnostic(spec.rules == nil ? "spec" : "spec.rules",
                "a \(action.rawValue) policy needs at least one rule (use rules: [{}] to match every request)"))
        }
        if policy.namespace.isEmpty { out.append(policy.diagnostic("metadata.namespace", "namespace must not be empty")) }
        if let dryRun = policy.annotations["istio.io/dry-run"], dryRun == "true" {
            out.append(policy.diagnostic("metadata.annotations",
                "istio.io/dry-run policies are not evaluated by this version of Gatehouse; this policy is ignored",
                severity: .warning))
        }
        for (index, rule) in (spec.rules ?? []).enumerated() {
            out += checkRule(rule, "spec.rules[\(index)]", policy)
            out += hostPortTraps(rule, action: action, "spec.rules[\(index)]", policy)
        }
        return out
    }

    /// `hosts` match the Host header exactly, port included (Istio's semantics, kept): a DENY on
    /// `a.com` does not deny `Host: a.com:8080`, and an ALLOW with `notHosts: [a.com]` lets it in. Istio
    /// accepts this and so does Gatehouse, with a warning naming the value to add (ISTIO-SECURITY-2021-008).
    static func hostPortTraps(_ rule: AuthorizationPolicySpec.Rule, action: AuthorizationPolicySpec.Action,
                              _ path: String, _ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
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
                out.append(policy.diagnostic("\(path).to[\(index)].operation.\(field)[\(valueIndex)]",
                    "\"\(value)\" matches the Host header exactly, port included: a request with Host \"\(example):8080\" "
                        + "\(verb) by this rule; \(advice) (ISTIO-SECURITY-2021-008)", severity: .warning))
            }
        }
        return out
    }

    static func checkRule(_ rule: AuthorizationPolicySpec.Rule, _ path: String,
                          _ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        out += checkEntries(rule.from, "\(path).from", inner: "source", anyOf: "source", policy,
                            body: \.source, isEmpty: \.isEmpty, check: checkSource)
        out += checkEntries(rule.to, "\(path).to", inner: "operation", anyOf: "operation", policy,
                            body: \.operation, isEmpty: \.isEmpty, check: checkOperation)
        if let when = rule.when {
            if when.isEmpty { out.append(policy.diagnostic("\(path).when", "when must not be empty; omit it for no condition")) }
            for (index, condition) in when.enumerated() {
                out += checkCondition(condition, "\(path).when[\(index)]", policy)
            }
        }
        return out
    }

    /// One diagnostic per value `check` finds a problem with, at `path[index]`.
    static func valueProblems(_ values: [String]?, _ path: String, _ policy: Resource<AuthorizationPolicySpec>,
                              _ check: (String) -> ValueProblem?) -> [Diagnostic] {
        (values ?? []).enumerated().compactMap { index, value in
            check(value).map { policy.diagnostic("\(path)[\(index)]", $0.message, severity: $0.severity) }
        }
    }

    /// `from[]`/`to[]`: the list, if present, must not be empty, and each entry's `source`/`operation`
    /// must set a field.
    static func checkEntries<Entry, Body>(
        _ entries: [Entry]?, _ path: String, inner: String, anyOf what: String, _ policy: Resource<AuthorizationPolicySpec>,
        body: (Entry) -> Body?, isEmpty: (Body) -> Bool,
        check: (Body, String, Resource<AuthorizationPolicySpec>) -> [Diagnostic]
    ) -> [Diagnostic] {
        guard let entries else { return [] }
        var out: [Diagnostic] = []
        let list = String(path.split(separator: ".").last ?? "")
        if entries.isEmpty { out.append(policy.diagnostic(path, "\(list) must not be empty; omit it to match any \(what)")) }
        for (index, entry) in entries.enumerated() {
            let here = "\(path)[\(index)]"
            guard let value = body(entry), !isEmpty(value) else {
                // A misspelt field already has its error; "empty" would only repeat it.
                if !policy.hasDecodeErrors { out.append(policy.diagnostic(here, "\(inner) must set at least one field")) }
                continue
            }
            out += check(value, "\(here).\(inner)", policy)
        }
        return out
    }

    static func checkSource(_ source: AuthorizationPolicySpec.Source, _ path: String,
                            _ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func each(_ values: [String]?, _ field: String, _ check: (String) -> ValueProblem?) {
            out += valueProblems(values, "\(path).\(field)", policy, check)
        }
        for field in ["principals", "notPrincipals"] {
            each(field == "principals" ? source.principals : source.notPrincipals, field) { value in
                if let problem = globProblem(value) { return problem }
                if value.hasPrefix("spiffe://") {
                    return .neverMatches("\"\(value)\" never matches: Istio adds spiffe:// itself; write \"\(value.dropFirst(9))\"")
                }
                if case .exact = ValueMatch(istio: value), !isPrincipalShape(value) {
                    return .neverMatches("\"\(value)\" is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>, "
                        + "so it matches no identity Istio issues")
                }
                return nil
            }
        }
        for field in ["requestPrincipals", "notRequestPrincipals"] {
            each(field == "requestPrincipals" ? source.requestPrincipals : source.notRequestPrincipals, field) { value in
                if let problem = globProblem(value) { return problem }
                if case .exact = ValueMatch(istio: value), !value.contains("/") {
                    return .neverMatches("\"\(value)\" never matches: a request principal is <issuer>/<subject>")
                }
                return nil
            }
        }
        for field in ["namespaces", "notNamespaces"] {
            each(field == "namespaces" ? source.namespaces : source.notNamespaces, field) { value in
                globProblem(value) ?? (value.contains("/") ? .refused("a namespace cannot contain \"/\"") : nil)
            }
        }
        for field in ["trustDomains", "notTrustDomains"] {
            each(field == "trustDomains" ? source.trustDomains : source.notTrustDomains, field) { value in
                globProblem(value) ?? (value.contains("/") || value.hasPrefix("spiffe:")
                    ? .neverMatches("\"\(value)\" never matches: a trust domain is a bare name such as cluster.local") : nil)
            }
        }
        for field in ["serviceAccounts", "notServiceAccounts"] {
            each(field == "serviceAccounts" ? source.serviceAccounts : source.notServiceAccounts, field) { value in
                if value.isEmpty { return .refused("empty value") }
                if value.contains("*") { return .refused("serviceAccounts take no wildcards") }
                if value.split(separator: "/", omittingEmptySubsequences: false).count > 2 || value.hasPrefix("/")
                    || value.hasSuffix("/") {
                    return .refused("expected <service-account> or <namespace>/<service-account>, got \"\(value)\"")
                }
                return nil
            }
        }
        if source.serviceAccounts != nil || source.notServiceAccounts != nil,
           source.principals != nil || source.notPrincipals != nil || source.namespaces != nil || source.notNamespaces != nil {
            out.append(policy.diagnostic("\(path).serviceAccounts",
                                         "serviceAccounts cannot be combined with principals or namespaces"))
        }
        for field in ["ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"] {
            let values: [String]? = switch field {
            case "ipBlocks": source.ipBlocks
            case "notIpBlocks": source.notIpBlocks
            case "remoteIpBlocks": source.remoteIpBlocks
            default: source.notRemoteIpBlocks
            }
            each(values, field) { IPBlock($0) == nil ? .refused("invalid IP address or CIDR \"\($0)\"") : nil }
        }
        return out
    }

    static func checkOperation(_ operation: AuthorizationPolicySpec.Operation, _ path: String,
                               _ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func each(_ values: [String]?, _ field: String, _ check: (String) -> ValueProblem?) {
            out += valueProblems(values, "\(path).\(field)", policy, check)
        }
        each(operation.hosts, "hosts", globProblem)
        each(operation.notHosts, "notHosts", globProblem)
        each(operation.ports, "ports", portProblem)
        each(operation.notPorts, "notPorts", portProblem)
        for (values, field) in [(operation.methods, "methods"), (operation.notMethods, "notMethods")] {
            each(values, field) { value in
                if let problem = globProblem(value) { return problem }
                if value != value.uppercased() {
                    return .neverMatches("methods are case-sensitive: \"\(value)\" never matches; write \"\(value.uppercased())\"")
                }
                return nil
            }
        }
        for (values, field) in [(operation.paths, "paths"), (operation.notPaths, "notPaths")] {
            each(values, field, pathProblem)
        }
        return out
    }

    static func checkCondition(_ condition: AuthorizationPolicySpec.Condition, _ path: String,
                               _ policy: Resource<AuthorizationPolicySpec>) -> [Diagnostic] {
        let key: AttributeKey
        do {
            key = try AttributeKey(istio: condition.key)
        } catch {
            var message = error.description
            if case .unknown(let text) = error {
                let stem = String(text.prefix { $0 != "[" })
                let stems = AttributeKey.simpleKeys.keys.sorted() + ["request.headers", "request.auth.claims"]
                let hint = Suggestion.hint(for: stem, in: stems)
                if !hint.isEmpty {
                    let suggested = text.contains("[") ? hint.replacingOccurrences(of: "\"?)", with: "[...]\"?)") : hint
                    message = "unknown condition key \"\(text)\"\(suggested); supported keys: "
                        + AttributeKey.spellings.joined(separator: ", ")
                }
            }
            return [policy.diagnostic("\(path).key", message)]
        }
        var out: [Diagnostic] = []
        if (condition.values ?? []).isEmpty, (condition.notValues ?? []).isEmpty {
            out.append(policy.diagnostic(path, "set values or notValues"))
        }
        for (values, field) in [(condition.values, "values"), (condition.notValues, "notValues")] {
            for (index, value) in (values ?? []).enumerated() {
                let problem: ValueProblem? = if key.takesIPBlocks {
                    IPBlock(value) == nil ? .refused("invalid IP address or CIDR \"\(value)\" for \(condition.key)") : nil
                } else if key == .destinationPort {
                    portProblem(value)
                } else {
                    globProblem(value)
                }
                if let problem {
                    out.append(policy.diagnostic("\(path).\(field)[\(index)]", problem.message, severity: problem.severity))
                }
            }
        }
        return out
    }

    /// Values are exact strings or `*` globs at one end. Anything that reads like a regex or puts `*`
    /// elsewhere is matched literally, by Istio and by Gatehouse alike, which is never what was meant. An
    /// empty value is what Istio refuses.
    static func globProblem(_ value: String) -> ValueProblem? {
        if value.isEmpty { return .refused("empty value") }
        if value == "*" { return nil }
        var core = Substring(value)
        if core.hasPrefix("*") { core = core.dropFirst() } else if core.hasSuffix("*") { core = core.dropLast() }
        if core.contains("*") {
            return .neverMatches("\"\(value)\": * is a wildcard only as the first or the last character; this one is "
                + "matched literally (as Istio does)")
        }
        let regexMarks = [".*", ".+", "\\d", "\\w", "\\.", "\\/", "(?", "[^", "|"]
        if value.hasPrefix("^") || value.hasSuffix("$") || regexMarks.contains(where: { value.contains($0) }) {
            return .neverMatches("\"\(value)\" looks like a regular expression, but AuthorizationPolicy values are exact "
                + "strings with an optional * at the start or the end: it is matched as written (as Istio does)")
        }
        return nil
    }

    static func portProblem(_ value: String) -> ValueProblem? {
        guard let port = Int(value), (1...65535).contains(port), !value.hasPrefix("+") else {
            return .refused("expected a port number (1-65535), got \"\(value)\"")
        }
        return nil
    }

    static func pathProblem(_ value: String) -> ValueProblem? {
        do {
            if case .glob = try PathMatch(istio: value) {
                if let problem = globProblem(value) { return problem }
            }
        } catch {
            return .refused(error.description)
        }
        if !value.hasPrefix("/"), !value.hasPrefix("*") {
            return .neverMatches("\"\(value)\" never matches: paths are compared with the normalized path, which starts "
                + "with /; write \"/\(value)\"")
        }
        return nil
    }

    static func isPrincipalShape(_ value: String) -> Bool {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 5 && parts[1] == "ns" && parts[3] == "sa" && !parts.contains(where: \.isEmpty)
    }
}

/// `selector`/`targetRef`/`targetRefs`, shared by AuthorizationPolicy and RequestAuthentication.
enum SecurityScopeChecks {
    static func check<S>(_ resource: Resource<S>, selector: WorkloadSelector?, targetRef: PolicyTargetReference?,
                         targetRefs: [PolicyTargetReference]?) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let setCount = [selector != nil, targetRef != nil, targetRefs != nil].filter { $0 }.count
        if setCount > 1 {
            out.append(resource.diagnostic("spec", "only one of selector, targetRef or targetRefs may be set"))
        }
        var refs = targetRefs.map { $0.enumerated().map { ("spec.targetRefs[\($0.offset)]", $0.element) } } ?? []
        if let targetRef { refs.append(("spec.targetRef", targetRef)) }
        for (path, ref) in refs {
            if let namespace = ref.namespace, namespace != resource.namespace {
                out.append(resource.diagnostic("\(path).namespace",
                    "a policy can only target resources in its own namespace \"\(resource.namespace)\""))
            }
            if ref.kind != "Gateway" || (ref.group ?? "gateway.networking.k8s.io") != "gateway.networking.k8s.io" {
                out.append(resource.diagnostic("\(path).kind",
                    "targetRef \(ref.kind) applies to waypoints and services, not to this gateway; it is ignored here "
                        + "(target kind: Gateway, group: gateway.networking.k8s.io, with the Bootstrap's name)",
                    severity: .warning))
            }
        }
        return out
    }
}
