enum DestinationRuleChecks {
    /// `appliesToGateway`: some route bound to a Gateway sends traffic to the rule's host. A rule for a
    /// host only sidecars reach configures nothing here, so the features this build lacks are not refused
    /// in it (it gets Istio's own checks only).
    static func check(_ rule: Resource<DestinationRuleSpec>, catalog: ServiceCatalog, appliesToGateway: Bool,
                      hasMeshIdentity: Bool = false) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if appliesToGateway, catalog.serviceEntry(for: rule.spec.host, namespace: rule.namespace) == nil,
           catalog.kubernetesService(for: rule.spec.host, namespace: rule.namespace) == nil, !catalog.hasBrokenServiceEntries {
            out.append(rule.diagnostic("spec.host", "no ServiceEntry declares host \"\(rule.spec.host)\"; "
                + "this DestinationRule applies to nothing", severity: .warning))
        }
        var names: Set<String> = []
        for (index, subset) in (rule.spec.subsets ?? []).enumerated() {
            if subset.name.isEmpty { out.append(rule.diagnostic("spec.subsets[\(index)].name", "subset name must not be empty")) }
            if !names.insert(subset.name).inserted {
                out.append(rule.diagnostic("spec.subsets[\(index)].name", "duplicate subset \"\(subset.name)\""))
            }
        }
        out += ExportTo.problems(rule.spec.exportTo, in: rule)
        out += mergeNotices(rule, catalog: catalog)
        guard appliesToGateway else { return out }
        out += ConfigValidator.notSupported(rule.spec.workloadSelector != nil, "spec.workloadSelector", rule, "workloadSelector")
        let context = Context(rule: rule, hasMeshIdentity: hasMeshIdentity)
        for (index, subset) in (rule.spec.subsets ?? []).enumerated() {
            out += policy(subset.trafficPolicy, "spec.subsets[\(index)].trafficPolicy", context)
        }
        out += policy(rule.spec.trafficPolicy, "spec.trafficPolicy", context)
        return out
    }

    /// Istio merges the DestinationRules of one host: the first `trafficPolicy` and the first definition
    /// of each subset name win. What a later rule loses to that is said where it is written.
    static func mergeNotices(_ rule: Resource<DestinationRuleSpec>, catalog: ServiceCatalog) -> [Diagnostic] {
        let rules = catalog.destinationRules(for: rule.spec.host, namespace: rule.namespace)
        guard rules.count > 1, rules.contains(where: { $0.label == rule.label }) else { return [] }
        var out: [Diagnostic] = []
        if rule.spec.trafficPolicy != nil, let owner = catalog.destinationRule(for: rule.spec.host, namespace: rule.namespace),
           owner.label != rule.label {
            out.append(rule.diagnostic("spec.trafficPolicy", "not applied: \(owner.label) also configures host "
                + "\"\(rule.spec.host)\" and comes first; Istio merges the rules of one host and the first trafficPolicy wins",
                severity: .warning))
        }
        for (index, subset) in (rule.spec.subsets ?? []).enumerated() {
            if let first = catalog.subset(subset.name, for: rule.spec.host, namespace: rule.namespace), first.rule.label != rule.label {
                out.append(rule.diagnostic("spec.subsets[\(index)]", "not applied: \(first.rule.label) defines subset "
                    + "\"\(subset.name)\" first; Istio merges the rules of one host and the first definition of a subset wins",
                    severity: .warning))
            }
        }
        return out
    }

    /// What the checks of one rule need besides the rule.
    struct Context {
        var rule: Resource<DestinationRuleSpec>
        /// The Bootstrap has an `identity` (ISTIO_MUTUAL needs it).
        var hasMeshIdentity: Bool
    }

    static func policy(_ policy: TrafficPolicy?, _ path: String, _ context: Context) -> [Diagnostic] {
        guard let policy else { return [] }
        let rule = context.rule
        var out = sections(ClusterTrafficPolicy(loadBalancer: policy.loadBalancer, connectionPool: policy.connectionPool,
                                                outlierDetection: policy.outlierDetection, tls: policy.tls), path, context)
        var ports: Set<UInt32> = []
        for (index, level) in (policy.portLevelSettings ?? []).enumerated() {
            let levelPath = "\(path).portLevelSettings[\(index)]"
            if let number = level.port?.number, (1...65535).contains(number) {
                if !ports.insert(number).inserted {
                    out.append(rule.diagnostic("\(levelPath).port.number", "port \(number) already has settings in this list"))
                }
            } else {
                out.append(rule.diagnostic("\(levelPath).port", level.port?.number == nil
                    ? "a port-level setting needs port.number" : "port \(level.port?.number ?? 0) is out of range (1-65535)"))
            }
            out += sections(ClusterTrafficPolicy(loadBalancer: level.loadBalancer, connectionPool: level.connectionPool,
                                                 outlierDetection: level.outlierDetection, tls: level.tls), levelPath, context)
        }
        out += ConfigValidator.notSupported(policy.tunnel != nil, "\(path).tunnel", rule, "tunnel")
        out += ConfigValidator.notSupported(policy.proxyProtocol != nil, "\(path).proxyProtocol", rule, "proxyProtocol")
        out += ConfigValidator.notSupported(policy.retryBudget != nil, "\(path).retryBudget", rule, "retryBudget")
        return out
    }

    /// The four sections a traffic policy and each of its port-level entries share.
    static func sections(_ policy: ClusterTrafficPolicy, _ path: String, _ context: Context) -> [Diagnostic] {
        let rule = context.rule
        var out: [Diagnostic] = []
        let balancer = policy.loadBalancer
        if balancer?.simple == .PASSTHROUGH {
            out.append(rule.diagnostic("\(path).loadBalancer.simple",
                "PASSTHROUGH forwards to the original destination address, which a gateway does not have; "
                    + "use ROUND_ROBIN, LEAST_REQUEST, RANDOM or consistentHash"))
        }
        if let hash = balancer?.consistentHash {
            if balancer?.simple != nil {
                out.append(rule.diagnostic("\(path).loadBalancer", "simple and consistentHash are alternatives: set one"))
            }
            out += consistentHash(hash, "\(path).loadBalancer.consistentHash", rule)
        }
        if let locality = balancer?.localityLbSetting {
            out += localityLbSetting(locality, "\(path).loadBalancer.localityLbSetting", rule,
                                     hasOutlierDetection: policy.outlierDetection != nil)
        }
        out += ConfigValidator.notSupported(balancer?.warmupDurationSecs != nil || balancer?.warmup != nil,
                                            "\(path).loadBalancer.warmup", rule, "warmup")
        if let outlier = policy.outlierDetection { out += outlierDetection(outlier, "\(path).outlierDetection", rule) }
        if let tls = policy.tls { out += ClientTLSChecks.check(tls, "\(path).tls", rule, hasMeshIdentity: context.hasMeshIdentity) }
        // connectTimeout, idle timeouts, maxConnections, maxConnectionDuration, maxRequestsPerConnection,
        // h2UpgradePolicy, http2MaxRequests, http1MaxPendingRequests and maxRetries are applied; the other
        // limits are not enforced yet, and an unenforced limit admits what the operator meant to refuse.
        let tcp = policy.connectionPool?.tcp
        let http = policy.connectionPool?.http
        let pool = "\(path).connectionPool"
        if let keepalive = tcp?.tcpKeepalive {
            // The kernel counts keepalive time and interval in whole seconds.
            for (field, value) in [("time", keepalive.time), ("interval", keepalive.interval)] {
                if let value, value.nanoseconds < 1_000_000_000 {
                    out.append(rule.diagnostic("\(pool).tcp.tcpKeepalive.\(field)", "\(value) is shorter than the kernel's 1s granularity"))
                }
            }
            if keepalive.probes == 0 {
                out.append(rule.diagnostic("\(pool).tcp.tcpKeepalive.probes", "must be at least 1"))
            }
        }
        if let duration = tcp?.maxConnectionDuration, duration.nanoseconds < 1_000_000 {
            out.append(rule.diagnostic("\(pool).tcp.maxConnectionDuration", "must be at least 1ms"))
        }
        for (field, value) in [("tcp.maxConnections", tcp?.maxConnections), ("http.http2MaxRequests", http?.http2MaxRequests),
                               ("http.http1MaxPendingRequests", http?.http1MaxPendingRequests), ("http.maxRetries", http?.maxRetries)] {
            if let value, value < 0 { out.append(rule.diagnostic("\(pool).\(field)", "must not be negative")) }
        }
        for (field, present) in [("http.useClientProtocol", http?.useClientProtocol != nil),
                                 ("http.maxConcurrentStreams", http?.maxConcurrentStreams != nil)] {
            out += ConfigValidator.notSupported(present, "\(pool).\(field)", rule, "connectionPool.\(field)")
        }
        return out
    }
}

extension DestinationRuleChecks {
    /// Istio's rules for `localityLbSetting` (pilot's validateLocalityLbSetting).
    static func localityLbSetting(_ setting: LocalityLbSetting, _ path: String, _ rule: Resource<DestinationRuleSpec>,
                                  hasOutlierDetection: Bool) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let distribute = setting.distribute ?? []
        let failover = setting.failover ?? []
        if !distribute.isEmpty, !failover.isEmpty {
            return [rule.diagnostic(path, "can not simultaneously specify 'distribute' and 'failover'")]
        }
        let priorities = setting.failoverPriority ?? []
        if !priorities.isEmpty, !distribute.isEmpty {
            out.append(rule.diagnostic("\(path).failoverPriority", "can not simultaneously specify 'distribute' and 'failoverPriority'"))
        }
        if !priorities.isEmpty, !failover.isEmpty {
            // Istio combines the two (locality failover within label priorities); that is not built, and
            // honouring one of them alone would route differently from what the rule says.
            out.append(rule.diagnostic("\(path).failoverPriority", "is not supported together with 'failover' yet: set one"))
        }
        for (index, label) in priorities.enumerated() {
            let key = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if key.isEmpty || label.hasSuffix("=") {
                out.append(rule.diagnostic("\(path).failoverPriority[\(index)]", "\"\(label)\" is not a label key or key=value"))
            }
        }
        if !priorities.isEmpty, !hasOutlierDetection {
            out.append(rule.diagnostic("\(path).failoverPriority", "outlier detection policy must be provided for failover: "
                                       + "without it, as in Istio, traffic never fails over", severity: .warning))
        }
        for (index, entry) in distribute.enumerated() {
            let at = "\(path).distribute[\(index)]"
            if let problem = LocalityPattern.problem(entry.from ?? "") { out.append(rule.diagnostic("\(at).from", problem)) }
            let weights = entry.to ?? [:]
            for (locality, weight) in weights.sorted(by: { $0.key < $1.key }) {
                if let problem = LocalityPattern.problem(locality) { out.append(rule.diagnostic("\(at).to.\(locality)", problem)) }
                if weight == 0 || weight > 100 {
                    out.append(rule.diagnostic("\(at).to.\(locality)", "locality weight must be in range [1, 100]"))
                }
            }
            let total = weights.values.reduce(0) { $0 + Int($1) }
            if total != 100 { out.append(rule.diagnostic("\(at).to", "total locality weight \(total) != 100")) }
        }
        for (index, entry) in failover.enumerated() {
            let at = "\(path).failover[\(index)]"
            let (from, to) = (entry.from ?? "", entry.to ?? "")
            if from.isEmpty || to.isEmpty { out.append(rule.diagnostic(at, "from and to are required")) }
            if from == to { out.append(rule.diagnostic(at, "locality lb failover settings must specify different regions")) }
            if from.contains("/") || to.contains("/") { out.append(rule.diagnostic(at, "locality lb failover only specify region")) }
            if from.contains("*") || to.contains("*") {
                out.append(rule.diagnostic(at, "locality lb failover region should not contain '*' wildcard"))
            }
        }
        if !failover.isEmpty, !hasOutlierDetection {
            out.append(rule.diagnostic("\(path).failover", "outlier detection policy must be provided for failover: "
                                       + "without it, as in Istio, traffic never fails over", severity: .warning))
        }
        return out
    }

    /// Istio's rules for `httpCookie` (a name and a ttl), and what a Set-Cookie field can carry.
    static func httpCookie(_ cookie: ConsistentHashSettings.HTTPCookie, _ path: String,
                           _ rule: Resource<DestinationRuleSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func isToken(_ text: String) -> Bool { !text.isEmpty && text.allSatisfy(\.isHTTPTokenCharacter) }
        // Cookie-value and attribute-value characters (RFC 6265 §4.1.1): no control, blank, `;`, `,`, `"`, `\`.
        func isCookieText(_ text: String) -> Bool {
            text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f && !";,\"\\".unicodeScalars.contains($0) }
        }
        if let name = cookie.name {
            if !isToken(name) { out.append(rule.diagnostic("\(path).name", "\"\(name)\" is not a valid cookie name")) }
        } else {
            out.append(rule.diagnostic(path, "name is required"))
        }
        if let ttl = cookie.ttl {
            if ttl.nanoseconds < 0 { out.append(rule.diagnostic("\(path).ttl", "must not be negative")) }
        } else {
            out.append(rule.diagnostic(path, "ttl is required (0s: a session cookie)"))
        }
        if let cookiePath = cookie.path, !isCookieText(cookiePath) {
            out.append(rule.diagnostic("\(path).path", "\"\(cookiePath)\" cannot be written in a Set-Cookie field"))
        }
        for (index, attribute) in (cookie.attributes ?? []).enumerated() {
            let at = "\(path).attributes[\(index)]"
            if !isToken(attribute.name ?? "") { out.append(rule.diagnostic("\(at).name", "a cookie attribute name is required (a token)")) }
            if let value = attribute.value, !value.isEmpty, !isCookieText(value) {
                out.append(rule.diagnostic("\(at).value", "\"\(value)\" cannot be written in a Set-Cookie field"))
            }
        }
        return out
    }

    /// Istio's rules for `consistentHash` (one key, one table), Envoy's limits on the tables, and what
    /// this build does not do yet.
    static func consistentHash(_ hash: ConsistentHashSettings, _ path: String, _ rule: Resource<DestinationRuleSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let keys = [hash.httpHeaderName != nil, hash.httpCookie != nil, hash.useSourceIp == true,
                    hash.httpQueryParameterName != nil].filter { $0 }.count
        if keys != 1 {
            out.append(rule.diagnostic(path, keys == 0
                ? "a hash key is required: httpHeaderName, httpCookie, useSourceIp: true or httpQueryParameterName"
                : "httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName are alternatives: set one"))
        }
        if let name = hash.httpHeaderName, name.isEmpty || !name.allSatisfy(\.isHTTPTokenCharacter) {
            out.append(rule.diagnostic("\(path).httpHeaderName", "\"\(name)\" is not a valid HTTP header name"))
        }
        if let name = hash.httpQueryParameterName, name.isEmpty {
            out.append(rule.diagnostic("\(path).httpQueryParameterName", "must not be empty"))
        }
        if let cookie = hash.httpCookie { out += httpCookie(cookie, "\(path).httpCookie", rule) }
        if hash.maglev != nil, hash.ringHash != nil || hash.minimumRingSize != nil {
            out.append(rule.diagnostic(path, "ringHash (or minimumRingSize) and maglev are alternatives: set one"))
        }
        if hash.ringHash != nil, hash.minimumRingSize != nil {
            out.append(rule.diagnostic("\(path).minimumRingSize", "deprecated; set ringHash.minimumRingSize only"))
        }
        // Envoy's bounds: a ring of at most 8M entries; a Maglev table of a prime size below 5,000,011.
        if let size = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize, size > 8_388_608 {
            out.append(rule.diagnostic(hash.minimumRingSize != nil ? "\(path).minimumRingSize" : "\(path).ringHash.minimumRingSize",
                                       "\(size) is larger than the 8,388,608 entries a ring may have"))
        }
        if let size = hash.maglev?.tableSize, size > 0, size >= 5_000_011 || !isPrime(size) {
            out.append(rule.diagnostic("\(path).maglev.tableSize", "\(size) is not a prime below 5,000,011 (Maglev needs a prime table size; Istio's default is 65537)"))
        }
        return out
    }

    /// Istio's bounds on `outlierDetection`, and the local-origin split this build does not do.
    static func outlierDetection(_ outlier: OutlierDetectionSettings, _ path: String,
                                 _ rule: Resource<DestinationRuleSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for (field, value) in [("maxEjectionPercent", outlier.maxEjectionPercent), ("minHealthPercent", outlier.minHealthPercent)] {
            if let value, !(0...100).contains(value) {
                out.append(rule.diagnostic("\(path).\(field)", "\(value) is not a percentage (0 to 100)"))
            }
        }
        if let errors = outlier.consecutiveErrors, errors < 0 {
            out.append(rule.diagnostic("\(path).consecutiveErrors", "must not be negative"))
        }
        for (field, value) in [("interval", outlier.interval), ("baseEjectionTime", outlier.baseEjectionTime)] {
            if let value, value.nanoseconds < 1_000_000 {
                out.append(rule.diagnostic("\(path).\(field)", "\(value) is shorter than the 1ms minimum"))
            }
        }
        if outlier.consecutiveErrors != nil {
            out.append(rule.diagnostic("\(path).consecutiveErrors",
                "deprecated: enforced as consecutiveGatewayErrors (502, 503 and 504), as Istio does; write that instead",
                severity: .warning))
        }
        out += ConfigValidator.notSupported(outlier.splitExternalLocalOriginErrors == true,
                                            "\(path).splitExternalLocalOriginErrors", rule, "outlierDetection.splitExternalLocalOriginErrors")
        out += ConfigValidator.notSupported(outlier.consecutiveLocalOriginFailures != nil,
                                            "\(path).consecutiveLocalOriginFailures", rule, "outlierDetection.consecutiveLocalOriginFailures")
        return out
    }

    static func isPrime(_ value: UInt64) -> Bool {
        guard value >= 2 else { return false }
        var divisor: UInt64 = 2
        while divisor * divisor <= value {
            if value % divisor == 0 { return false }
            divisor += 1
        }
        return true
    }
}

enum ServiceEntryChecks {
    /// `appliesToGateway`: a gateway route reaches one of its hosts, so how its endpoints are balanced
    /// matters here.
    static func check(_ entry: Resource<ServiceEntrySpec>, appliesToGateway: Bool) -> [Diagnostic] {
        var out: [Diagnostic] = ExportTo.problems(entry.spec.exportTo, in: entry)
        let spec = entry.spec
        if spec.hosts.isEmpty { out.append(entry.diagnostic("spec.hosts", "at least one host is required")) }
        for (index, host) in spec.hosts.enumerated() {
            if host == "*" { out.append(entry.diagnostic("spec.hosts[\(index)]", "\"*\" is not allowed as a ServiceEntry host")) }
            else if let problem = HostName.problem(host) { out.append(entry.diagnostic("spec.hosts[\(index)]", problem)) }
        }
        var portNumbers: Set<UInt32> = []
        let portNames = Set((spec.ports ?? []).compactMap(\.name))
        for (index, port) in (spec.ports ?? []).enumerated() {
            if port.number == 0 || port.number > 65535 {
                out.append(entry.diagnostic("spec.ports[\(index)].number", "port \(port.number) is out of range (1-65535)"))
            }
            if !portNumbers.insert(port.number).inserted {
                out.append(entry.diagnostic("spec.ports[\(index)].number", "duplicate port \(port.number)"))
            }
            if let proto = port.protocol, ServerProtocol(istio: proto) == nil {
                let names = ServerProtocol.allCases.map(\.rawValue)
                out.append(entry.diagnostic("spec.ports[\(index)].protocol",
                    "unknown protocol \"\(proto)\"\(Suggestion.hint(for: proto, in: names))"))
            }
        }
        let resolution = spec.resolution ?? .NONE
        switch resolution {
        case .NONE:
            // A gateway has no original destination address: NONE forwards to the host each request names
            // (Envoy's dynamic forward proxy), so endpoints would go unused.
            if spec.endpoints != nil || spec.workloadSelector != nil {
                out.append(entry.diagnostic(spec.endpoints != nil ? "spec.endpoints" : "spec.workloadSelector",
                    "not used with resolution NONE, which forwards to the host each request names (resolved by DNS); "
                        + "use STATIC or DNS to send traffic to these endpoints"))
            }
            if (spec.ports ?? []).isEmpty {
                out.append(entry.diagnostic("spec.ports", "resolution NONE needs the ports requests may be forwarded to"))
            }
        case .DYNAMIC_DNS:
            out.append(entry.diagnostic("spec.resolution", "DYNAMIC_DNS is not supported at a gateway; use DNS"))
        case .STATIC:
            if (spec.endpoints ?? []).isEmpty, spec.workloadSelector == nil {
                out.append(entry.diagnostic("spec.endpoints", "resolution STATIC needs endpoints or a workloadSelector"))
            }
        case .DNS, .DNS_ROUND_ROBIN:
            break
        }
        if spec.endpoints != nil, spec.workloadSelector != nil {
            out.append(entry.diagnostic("spec.workloadSelector", "only one of endpoints or workloadSelector may be set"))
        }
        for (index, endpoint) in (spec.endpoints ?? []).enumerated() {
            let path = "spec.endpoints[\(index)]"
            guard let address = endpoint.address, !address.isEmpty else {
                out.append(entry.diagnostic(path, "missing required field \"address\""))
                continue
            }
            if resolution == .STATIC, !HostName.isIPAddress(address), !address.hasPrefix("unix://") {
                out.append(entry.diagnostic("\(path).address", "resolution STATIC needs an IP address, got \"\(address)\""))
            }
            for name in (endpoint.ports ?? [:]).keys.sorted() where !portNames.contains(name) {
                out.append(entry.diagnostic("\(path).ports.\(name)",
                    "no port named \"\(name)\" in spec.ports\(Suggestion.hint(for: name, in: portNames))"))
            }
            if appliesToGateway { out += endpointProblems(endpoint, path, entry) }
        }
        return out
    }

    /// Endpoint fields that change where Istio sends traffic and that this build does not apply.
    static func endpointProblems<S>(_ endpoint: WorkloadEntrySpec, _ path: String, _ resource: Resource<S>) -> [Diagnostic] {
        ConfigValidator.notSupported(endpoint.weight != nil, "\(path).weight", resource, "endpoint weight (it balances round robin)")
            + ConfigValidator.notSupported(endpoint.network != nil, "\(path).network", resource,
                                           "an endpoint on another network (reached through that network's gateway)")
    }

    /// WorkloadEntries that a ServiceEntry reached from a gateway route selects.
    static func selectedWorkloads(_ workloads: [Resource<WorkloadEntrySpec>],
                                  by entries: [Resource<ServiceEntrySpec>]) -> [Diagnostic] {
        workloads.flatMap { workload -> [Diagnostic] in
            let labels = workload.labels.merging(workload.spec.labels ?? [:]) { _, spec in spec }
            let selected = entries.contains { entry in
                guard entry.namespace == workload.namespace, let selector = entry.spec.workloadSelector?.labels else { return false }
                return selector.allSatisfy { labels[$0.key] == $0.value }
            }
            return selected ? endpointProblems(workload.spec, "spec", workload) : []
        }
    }
}
