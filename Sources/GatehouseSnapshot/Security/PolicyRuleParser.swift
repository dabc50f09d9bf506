import Foundation
import GatehouseConfig
import GatehouseSecurity

/// Rules in AuthorizationPolicy form (`from`, `to`, `when`) read into the conditions the engine evaluates,
/// with everything wrong with them, for any resource that holds such rules: an AuthorizationPolicy's
/// `rules`, a RateLimitPolicy rule's `match`. Validation and compilation are this one pass, so they
/// cannot disagree: a value that does not parse is an error here, never a condition silently left out.
///
/// Istio's AuthorizationPolicy validation (errors: what Istio refuses), plus the mistakes Istio accepts
/// but that make a value never match or mean something else than its author thinks (a regex where a glob is
/// expected, a `*` in the middle, a `spiffe://` principal, a lowercase method). Those load, as in Istio, and
/// Gatehouse matches them exactly as Istio does; each gets a warning saying why and what was probably
/// meant, and `validate --strict` turns the warnings into errors for CI. (`selector`/`targetRef` are
/// checked with the model, in `SecurityScopeChecks`.)
struct PolicyRuleParser<Spec: Sendable> {
    /// What a value check found: a value Istio refuses, or one Istio accepts that never matches.
    struct ValueProblem {
        var message: String
        var severity: Diagnostic.Severity

        static func refused(_ message: String) -> ValueProblem { .init(message: message, severity: .error) }
        static func neverMatches(_ message: String) -> ValueProblem { .init(message: message, severity: .warning) }
    }

    /// The resource the rules belong to: diagnostics name it, and its namespace qualifies bare service accounts.
    let policy: Resource<Spec>
    private(set) var diagnostics: [Diagnostic] = []

    init(policy: Resource<Spec>) { self.policy = policy }

    mutating func report(_ path: String, _ message: String, severity: Diagnostic.Severity = .error) {
        diagnostics.append(policy.diagnostic(path, message, severity: severity))
    }

    mutating func parseRule(_ rule: AuthorizationPolicySpec.Rule, _ path: String) -> ParsedPolicy.Rule {
        var parsed = ParsedPolicy.Rule(from: nil, to: nil, when: [])
        if let entries = rule.from {
            if entries.isEmpty { report("\(path).from", "from must not be empty; omit it to match any source") }
            parsed.from = []
            for (index, entry) in entries.enumerated() {
                let here = "\(path).from[\(index)]"
                guard let source = entry.source, !source.isEmpty else {
                    // A misspelt field already has its error; "empty" would only repeat it.
                    if !policy.hasDecodeErrors { report(here, "source must set at least one field") }
                    continue
                }
                parsed.from?.append(parseSource(source, "\(here).source"))
            }
        }
        if let entries = rule.to {
            if entries.isEmpty { report("\(path).to", "to must not be empty; omit it to match any operation") }
            parsed.to = []
            for (index, entry) in entries.enumerated() {
                let here = "\(path).to[\(index)]"
                guard let operation = entry.operation, !operation.isEmpty else {
                    if !policy.hasDecodeErrors { report(here, "operation must set at least one field") }
                    continue
                }
                parsed.to?.append(parseOperation(operation, "\(here).operation"))
            }
        }
        if let when = rule.when {
            if when.isEmpty { report("\(path).when", "when must not be empty; omit it for no condition") }
            for (index, condition) in when.enumerated() {
                parsed.when += parseCondition(condition, "\(path).when[\(index)]")
            }
        }
        return parsed
    }

    /// Each value of `values` through `parse`: its problem (if any) reported at `path[index]`, its parsed
    /// form kept unless Istio refuses it (then the load fails, so nothing is dropped from a live policy).
    private mutating func values<T>(_ values: [String], _ path: String,
                                    _ parse: (String) -> (T?, ValueProblem?)) -> [T] {
        var out: [T] = []
        for (index, value) in values.enumerated() {
            let (parsed, problem) = parse(value)
            if let problem { report("\(path)[\(index)]", problem.message, severity: problem.severity) }
            if let parsed { out.append(parsed) }
        }
        return out
    }

    /// A glob value with an extra check for what it stands for.
    static func glob(_ value: String, _ extra: (String) -> ValueProblem? = { _ in nil }) -> (ValueMatch?, ValueProblem?) {
        if let problem = globProblem(value) { return (problem.severity == .error ? nil : ValueMatch(istio: value), problem) }
        return (ValueMatch(istio: value), extra(value))
    }

    static func ipBlock(_ value: String) -> (IPBlock?, ValueProblem?) {
        guard let block = IPBlock(value) else { return (nil, .refused("invalid IP address or CIDR \"\(value)\"")) }
        return (block, nil)
    }

    static func port(_ value: String) -> (Int?, ValueProblem?) {
        if let problem = portProblem(value) { return (nil, problem) }
        return (Int(value), nil)
    }

    private mutating func parseSource(_ source: AuthorizationPolicySpec.Source, _ path: String) -> [Condition] {
        var out: [Condition] = []
        func add(_ test: Condition.Test?, _ field: String, negated: Bool) {
            if let test { out.append(Condition(test, negated: negated, field: Self.withinRule("\(path).\(field)"))) }
        }
        func list(_ values: [String]?) -> [String]? { values.flatMap { $0.isEmpty ? nil : $0 } }
        let namespace = policy.namespace
        for (field, values, negated) in [("principals", source.principals, false), ("notPrincipals", source.notPrincipals, true)] {
            guard let values = list(values) else { continue }
            add(.principals(self.values(values, "\(path).\(field)") { Self.glob($0, Self.principalProblem) }), field, negated: negated)
        }
        for (field, values, negated) in [("requestPrincipals", source.requestPrincipals, false),
                                         ("notRequestPrincipals", source.notRequestPrincipals, true)] {
            guard let values = list(values) else { continue }
            add(.requestPrincipals(self.values(values, "\(path).\(field)") { Self.glob($0, Self.requestPrincipalProblem) }),
                field, negated: negated)
        }
        for (field, values, negated) in [("namespaces", source.namespaces, false), ("notNamespaces", source.notNamespaces, true)] {
            guard let values = list(values) else { continue }
            add(.namespaces(self.values(values, "\(path).\(field)") { value in
                value.contains("/") && Self.globProblem(value) == nil
                    ? (nil, .refused("a namespace cannot contain \"/\"")) : Self.glob(value)
            }), field, negated: negated)
        }
        for (field, values, negated) in [("trustDomains", source.trustDomains, false),
                                         ("notTrustDomains", source.notTrustDomains, true)] {
            guard let values = list(values) else { continue }
            add(.trustDomains(self.values(values, "\(path).\(field)") { value in
                Self.glob(value) { $0.contains("/") || $0.hasPrefix("spiffe:")
                    ? .neverMatches("\"\($0)\" never matches: a trust domain is a bare name such as cluster.local") : nil }
            }), field, negated: negated)
        }
        for (field, values, negated) in [("serviceAccounts", source.serviceAccounts, false),
                                         ("notServiceAccounts", source.notServiceAccounts, true)] {
            guard let values = list(values) else { continue }
            add(.serviceAccounts(self.values(values, "\(path).\(field)") { value in
                if let problem = Self.serviceAccountProblem(value) { return (nil, problem) }
                return (value.contains("/") ? value : "\(namespace)/\(value)", nil)
            }), field, negated: negated)
        }
        if source.serviceAccounts != nil || source.notServiceAccounts != nil,
           source.principals != nil || source.notPrincipals != nil || source.namespaces != nil || source.notNamespaces != nil {
            report("\(path).serviceAccounts", "serviceAccounts cannot be combined with principals or namespaces")
        }
        for (field, values, negated, remote) in [("ipBlocks", source.ipBlocks, false, false),
                                                 ("notIpBlocks", source.notIpBlocks, true, false),
                                                 ("remoteIpBlocks", source.remoteIpBlocks, false, true),
                                                 ("notRemoteIpBlocks", source.notRemoteIpBlocks, true, true)] {
            guard let values = list(values) else { continue }
            let blocks = self.values(values, "\(path).\(field)", Self.ipBlock)
            add(remote ? .remoteIP(blocks) : .sourceIP(blocks), field, negated: negated)
        }
        return out
    }

    private mutating func parseOperation(_ operation: AuthorizationPolicySpec.Operation, _ path: String) -> [Condition] {
        var out: [Condition] = []
        func add(_ test: Condition.Test, _ field: String, negated: Bool) {
            out.append(Condition(test, negated: negated, field: Self.withinRule("\(path).\(field)")))
        }
        for (field, values, negated) in [("hosts", operation.hosts, false), ("notHosts", operation.notHosts, true)] {
            guard let values, !values.isEmpty else { continue }
            add(.hosts(self.values(values, "\(path).\(field)") { Self.glob($0) }.map(\.lowercased)), field, negated: negated)
        }
        for (field, values, negated) in [("ports", operation.ports, false), ("notPorts", operation.notPorts, true)] {
            guard let values, !values.isEmpty else { continue }
            add(.ports(self.values(values, "\(path).\(field)", Self.port)), field, negated: negated)
        }
        for (field, values, negated) in [("methods", operation.methods, false), ("notMethods", operation.notMethods, true)] {
            guard let values, !values.isEmpty else { continue }
            add(.methods(self.values(values, "\(path).\(field)") { Self.glob($0, Self.methodProblem) }), field, negated: negated)
        }
        for (field, values, negated) in [("paths", operation.paths, false), ("notPaths", operation.notPaths, true)] {
            guard let values, !values.isEmpty else { continue }
            add(.paths(self.values(values, "\(path).\(field)", Self.path)), field, negated: negated)
        }
        return out
    }

    private mutating func parseCondition(_ condition: AuthorizationPolicySpec.Condition, _ path: String) -> [Condition] {
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
            report("\(path).key", message)
            return []
        }
        if (condition.values ?? []).isEmpty, (condition.notValues ?? []).isEmpty {
            report(path, "set values or notValues")
        }
        var out: [Condition] = []
        for (field, values, negated) in [("values", condition.values, false), ("notValues", condition.notValues, true)] {
            guard let values, !values.isEmpty else { continue }
            let here = "\(path).\(field)"
            func blocks() -> [IPBlock] {
                self.values(values, here) { value in
                    IPBlock(value).map { ($0, nil) }
                        ?? (nil, .refused("invalid IP address or CIDR \"\(value)\" for \(condition.key)"))
                }
            }
            func globs() -> [ValueMatch] { self.values(values, here) { Self.glob($0) } }
            let test: Condition.Test = switch key {
            case .sourceIP: .sourceIP(blocks())
            case .remoteIP: .remoteIP(blocks())
            case .destinationIP: .destinationIP(blocks())
            case .destinationPort: .ports(self.values(values, here, Self.port))
            case .requestHeader(let name): .header(name, globs())
            case .sourceNamespace: .namespaces(globs())
            case .sourceTrustDomain: .trustDomains(globs())
            case .sourcePrincipal: .principals(globs())
            case .requestPrincipal: .requestPrincipals(globs())
            case .requestAudiences: .audiences(globs())
            case .requestPresenter: .presenter(globs())
            case .requestClaim(let claim): .claim(claim, globs())
            case .connectionSNI: .serverName(globs())
            }
            out.append(Condition(test, negated: negated, field: Self.withinRule("\(path) \(condition.key) \(field)")))
        }
        return out
    }

    /// A condition names its place within its rule ("when[1] source.ip values"): `explain` prints it
    /// after the policy and rule, and diagnostics carry the full path.
    static func withinRule(_ path: String) -> String {
        guard path.hasPrefix("spec.rules["), let end = path.firstIndex(of: "]") else { return path }
        // Past "]" and the "." after it.
        return String(path[end...].dropFirst(2))
    }

    // MARK: value checks

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

    static func principalProblem(_ value: String) -> ValueProblem? {
        if value.hasPrefix("spiffe://") {
            return .neverMatches("\"\(value)\" never matches: Istio adds spiffe:// itself; write \"\(value.dropFirst(9))\"")
        }
        if case .exact = ValueMatch(istio: value), !isPrincipalShape(value) {
            return .neverMatches("\"\(value)\" is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>, "
                + "so it matches no identity Istio issues")
        }
        return nil
    }

    static func requestPrincipalProblem(_ value: String) -> ValueProblem? {
        if case .exact = ValueMatch(istio: value), !value.contains("/") {
            return .neverMatches("\"\(value)\" never matches: a request principal is <issuer>/<subject>")
        }
        return nil
    }

    static func serviceAccountProblem(_ value: String) -> ValueProblem? {
        if value.isEmpty { return .refused("empty value") }
        if value.contains("*") { return .refused("serviceAccounts take no wildcards") }
        if value.split(separator: "/", omittingEmptySubsequences: false).count > 2 || value.hasPrefix("/")
            || value.hasSuffix("/") {
            return .refused("expected <service-account> or <namespace>/<service-account>, got \"\(value)\"")
        }
        return nil
    }

    static func methodProblem(_ value: String) -> ValueProblem? {
        value != value.uppercased()
            ? .neverMatches("methods are case-sensitive: \"\(value)\" never matches; write \"\(value.uppercased())\"") : nil
    }

    static func portProblem(_ value: String) -> ValueProblem? {
        guard let port = Int(value), (1...65535).contains(port), !value.hasPrefix("+") else {
            return .refused("expected a port number (1-65535), got \"\(value)\"")
        }
        return nil
    }

    static func path(_ value: String) -> (PathMatch?, ValueProblem?) {
        let match: PathMatch
        do {
            match = try PathMatch(istio: value)
        } catch {
            return (nil, .refused(error.description))
        }
        if case .glob = match, let problem = globProblem(value) {
            return (problem.severity == .error ? nil : match, problem)
        }
        if !value.hasPrefix("/"), !value.hasPrefix("*") {
            return (match, .neverMatches("\"\(value)\" never matches: paths are compared with the normalized path, "
                + "which starts with /; write \"/\(value)\""))
        }
        return (match, nil)
    }

    static func isPrincipalShape(_ value: String) -> Bool {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 5 && parts[1] == "ns" && parts[3] == "sa" && !parts.contains(where: \.isEmpty)
    }
}