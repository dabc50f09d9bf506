import GatehouseConfig
import GatehouseSecurity

/// Compiles the AuthorizationPolicies and RequestAuthentications that apply to this gateway. Scope is
/// Istio's: the gateway's own namespace or the root namespace, and a `selector` that matches the
/// Bootstrap labels (none = every workload) or a `targetRef` to the gateway (kind Gateway, the
/// Bootstrap's name). Everything else is dropped here, so it costs a request nothing.
struct SecurityCompiler {
    let config: ConfigSet
    let settings: GatewaySettings
    /// Policies in evaluation order; picked once, then compiled for each listener.
    private(set) var applicablePolicies: [Resource<AuthorizationPolicySpec>] = []

    init(config: ConfigSet, settings: GatewaySettings) {
        self.config = config
        self.settings = settings
        applicablePolicies = config.authorizationPolicies.filter { policy in
            policy.annotations["istio.io/dry-run"] != "true" && policy.spec.action != .CUSTOM
                && applies(namespace: policy.namespace, selector: policy.spec.selector, targetRef: policy.spec.targetRef,
                           targetRefs: policy.spec.targetRefs)
        }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    func applies(namespace: String, selector: WorkloadSelector?, targetRef: PolicyTargetReference?,
                 targetRefs: [PolicyTargetReference]?) -> Bool {
        guard namespace == settings.namespace || namespace == settings.rootNamespace else { return false }
        let refs = (targetRefs ?? []) + (targetRef.map { [$0] } ?? [])
        if !refs.isEmpty {
            return namespace == settings.namespace && refs.contains { ref in
                ref.kind == "Gateway" && (ref.group ?? "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
                    && ref.name == settings.gatewayName
            }
        }
        let labels = selector?.matchLabels ?? [:]
        return labels.allSatisfy { settings.labels[$0.key] == $0.value }
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
            let action: PolicyAction = switch policy.spec.action ?? .ALLOW {
            case .DENY: .deny
            case .AUDIT: .audit
            default: .allow
            }
            if action == .allow { hasAllow = true }
            let specRules = policy.spec.rules ?? []
            if specRules.isEmpty, action == .allow, allowNothing == nil {
                allowNothing = RuleLabel(namespace: policy.namespace, name: policy.name, action: .allow, ruleIndex: nil)
            }
            for (index, rule) in specRules.enumerated() {
                let label = RuleLabel(namespace: policy.namespace, name: policy.name, action: action, ruleIndex: index)
                guard let compiled = compile(rule, label: label, namespace: policy.namespace, port: port) else { continue }
                if let applied = tcp ? compiled.forTCP() : compiled { rules.append(applied) }
            }
        }
        return AuthorizationEngine(rules: rules, policies: policies.map(\.id), hasAllowPolicy: hasAllow,
                                   allowNothing: allowNothing)
    }

    /// nil when the rule can never match on `port`.
    func compile(_ rule: AuthorizationPolicySpec.Rule, label: RuleLabel, namespace: String, port: Int) -> PolicyRule? {
        var from: [[Condition]]?
        if let entries = rule.from {
            from = entries.enumerated().compactMap { index, entry in
                entry.source.map { source(($0), "from[\(index)].source", namespace: namespace) }
            }
        }
        var to: [[Condition]]?
        if let entries = rule.to {
            let live = entries.enumerated().compactMap { index, entry in
                entry.operation.flatMap { pruned(operation($0, "to[\(index)].operation"), port: port) }
            }
            if live.isEmpty { return nil }
            to = live
        }
        var when: [Condition] = []
        for (index, condition) in (rule.when ?? []).enumerated() {
            when += self.condition(condition, "when[\(index)]")
        }
        guard let liveWhen = pruned(when, port: port) else { return nil }
        return PolicyRule(label: label, from: from, to: to, when: liveWhen)
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

    func source(_ source: AuthorizationPolicySpec.Source, _ path: String, namespace: String) -> [Condition] {
        var out: [Condition] = []
        func add(_ values: [String]?, _ field: String, negated: Bool, _ make: ([String]) -> Condition.Test) {
            guard let values, !values.isEmpty else { return }
            out.append(Condition(make(values), negated: negated, field: "\(path).\(field)"))
        }
        let globs: ([String]) -> [ValueMatch] = { $0.map(ValueMatch.init(istio:)) }
        let blocks: ([String]) -> [IPBlock] = { $0.compactMap(IPBlock.init) }
        let accounts: ([String]) -> [String] = { $0.map { $0.contains("/") ? $0 : "\(namespace)/\($0)" } }
        add(source.principals, "principals", negated: false) { .principals(globs($0)) }
        add(source.notPrincipals, "notPrincipals", negated: true) { .principals(globs($0)) }
        add(source.requestPrincipals, "requestPrincipals", negated: false) { .requestPrincipals(globs($0)) }
        add(source.notRequestPrincipals, "notRequestPrincipals", negated: true) { .requestPrincipals(globs($0)) }
        add(source.namespaces, "namespaces", negated: false) { .namespaces(globs($0)) }
        add(source.notNamespaces, "notNamespaces", negated: true) { .namespaces(globs($0)) }
        add(source.trustDomains, "trustDomains", negated: false) { .trustDomains(globs($0)) }
        add(source.notTrustDomains, "notTrustDomains", negated: true) { .trustDomains(globs($0)) }
        add(source.serviceAccounts, "serviceAccounts", negated: false) { .serviceAccounts(accounts($0)) }
        add(source.notServiceAccounts, "notServiceAccounts", negated: true) { .serviceAccounts(accounts($0)) }
        add(source.ipBlocks, "ipBlocks", negated: false) { .sourceIP(blocks($0)) }
        add(source.notIpBlocks, "notIpBlocks", negated: true) { .sourceIP(blocks($0)) }
        add(source.remoteIpBlocks, "remoteIpBlocks", negated: false) { .remoteIP(blocks($0)) }
        add(source.notRemoteIpBlocks, "notRemoteIpBlocks", negated: true) { .remoteIP(blocks($0)) }
        return out
    }

    func operation(_ operation: AuthorizationPolicySpec.Operation, _ path: String) -> [Condition] {
        var out: [Condition] = []
        func add(_ values: [String]?, _ field: String, negated: Bool, _ make: ([String]) -> Condition.Test) {
            guard let values, !values.isEmpty else { return }
            out.append(Condition(make(values), negated: negated, field: "\(path).\(field)"))
        }
        let hosts: ([String]) -> Condition.Test = { .hosts($0.map { ValueMatch(istio: $0).lowercased }) }
        let ports: ([String]) -> Condition.Test = { .ports($0.compactMap { Int($0) }) }
        let methods: ([String]) -> Condition.Test = { .methods($0.map(ValueMatch.init(istio:))) }
        let paths: ([String]) -> Condition.Test = { .paths($0.compactMap { try? PathMatch(istio: $0) }) }
        add(operation.hosts, "hosts", negated: false, hosts)
        add(operation.notHosts, "notHosts", negated: true, hosts)
        add(operation.ports, "ports", negated: false, ports)
        add(operation.notPorts, "notPorts", negated: true, ports)
        add(operation.methods, "methods", negated: false, methods)
        add(operation.notMethods, "notMethods", negated: true, methods)
        add(operation.paths, "paths", negated: false, paths)
        add(operation.notPaths, "notPaths", negated: true, paths)
        return out
    }

    func condition(_ condition: AuthorizationPolicySpec.Condition, _ path: String) -> [Condition] {
        guard let key = try? AttributeKey(istio: condition.key) else { return [] }
        func test(_ values: [String]) -> Condition.Test {
            let globs = values.map(ValueMatch.init(istio:))
            switch key {
            case .requestHeader(let name): return .header(name, globs)
            case .sourceIP: return .sourceIP(values.compactMap(IPBlock.init))
            case .remoteIP: return .remoteIP(values.compactMap(IPBlock.init))
            case .destinationIP: return .destinationIP(values.compactMap(IPBlock.init))
            case .sourceNamespace: return .namespaces(globs)
            case .sourceTrustDomain: return .trustDomains(globs)
            case .sourcePrincipal: return .principals(globs)
            case .requestPrincipal: return .requestPrincipals(globs)
            case .requestAudiences: return .audiences(globs)
            case .requestPresenter: return .presenter(globs)
            case .requestClaim(let claim): return .claim(claim, globs)
            case .destinationPort: return .ports(values.compactMap { Int($0) })
            case .connectionSNI: return .serverName(globs)
            }
        }
        var out: [Condition] = []
        if let values = condition.values, !values.isEmpty {
            out.append(Condition(test(values), negated: false, field: "\(path) \(condition.key) values"))
        }
        if let values = condition.notValues, !values.isEmpty {
            out.append(Condition(test(values), negated: true, field: "\(path) \(condition.key) notValues"))
        }
        return out
    }

    /// The JWT rules of every RequestAuthentication that applies, in (namespace, name) order.
    var authentication: RequestAuthenticator {
        let resources = config.requestAuthentications.filter {
            applies(namespace: $0.namespace, selector: $0.spec.selector, targetRef: $0.spec.targetRef,
                    targetRefs: $0.spec.targetRefs)
        }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        var rules: [JWTRule] = []
        for resource in resources {
            for (index, rule) in (resource.spec.jwtRules ?? []).enumerated() {
                let keys: JWTKeySource
                if let jwks = rule.jwks, let parsed = try? JWKSet(json: jwks) {
                    keys = .inline(parsed)
                } else if let uri = rule.jwksUri {
                    keys = .remote(uri)
                } else if rule.jwks == nil {
                    keys = .discovery(issuer: rule.issuer)
                } else {
                    continue
                }
                var locations: [TokenLocation] = (rule.fromHeaders ?? []).map {
                    .header($0.name.lowercased(), prefix: $0.prefix ?? "")
                }
                locations += (rule.fromParams ?? []).map { .param($0) }
                locations += (rule.fromCookies ?? []).map { .cookie($0) }
                rules.append(JWTRule(
                    requirements: JWTRequirements(issuer: rule.issuer, audiences: rule.audiences ?? [],
                                                  spaceDelimitedClaims: rule.spaceDelimitedClaims ?? []),
                    locations: locations, keys: keys, forwardOriginalToken: rule.forwardOriginalToken ?? false,
                    outputPayloadToHeader: rule.outputPayloadToHeader.map { $0.lowercased() },
                    outputClaimToHeaders: (rule.outputClaimToHeaders ?? []).map {
                        (header: $0.header.lowercased(), claim: $0.claim.split(separator: ".").map(String.init))
                    },
                    label: "\(resource.id)[jwtRules \(index)]",
                    fetchTimeout: rule.timeout.map { Double($0.nanoseconds) / 1e9 } ?? 5))
            }
        }
        return RequestAuthenticator(rules: rules)
    }
}
