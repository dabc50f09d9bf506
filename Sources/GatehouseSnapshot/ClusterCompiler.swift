import GatehouseConfig
import GatehouseUpstream

/// Builds the clusters routes refer to, on demand, from ServiceEntries, WorkloadEntries and DestinationRules.
struct ClusterCompiler {
    let set: ConfigSet
    let catalog: ServiceCatalog
    let defaults: GatewaySettings
    private(set) var compiled: [String: Cluster] = [:]
    /// Cluster names in the order routes first referred to them: a route's destination carries its
    /// cluster's position here, so the data plane finds the cluster without hashing its name.
    private var order: [String] = []
    private var indexes: [String: Int] = [:]

    init(set: ConfigSet, catalog: ServiceCatalog, defaults: GatewaySettings) {
        self.set = set
        self.catalog = catalog
        self.defaults = defaults
    }

    /// The cluster for `destination` as seen from a rule in `namespace` (compiled on first use): its name
    /// and its index in `Snapshot.clusterList`.
    mutating func reference(_ destination: Destination, namespace: String) -> (name: String, index: Int) {
        let name = cluster(for: destination, namespace: namespace)
        if let index = indexes[name] { return (name, index) }
        indexes[name] = order.count
        order.append(name)
        return (name, order.count - 1)
    }

    /// The compiled clusters, each at its `index`.
    var list: [Cluster] {
        order.enumerated().compactMap { index, name in
            guard var cluster = compiled[name] else { return nil }
            cluster.index = index
            return cluster
        }
    }

    /// The cluster name for `destination` as seen from a rule in `namespace`, compiling it on first use.
    private mutating func cluster(for destination: Destination, namespace: String) -> String {
        let fqdn = catalog.fqdn(destination.host, namespace: namespace)
        if let service = catalog.kubernetesService(for: destination.host, namespace: namespace) {
            return kubernetesService(service, destination: destination)
        }
        guard let entry = catalog.serviceEntry(for: destination.host, namespace: namespace) else {
            // With ALLOW_ANY, a host no ServiceEntry declares is reached through DNS at the destination's
            // port. Otherwise validation rejects unknown hosts; an empty cluster answers 503 UH if one
            // slips through.
            let port = Int(destination.port?.number ?? 0)
            let name = "outbound|\(port)|\(destination.subset ?? "")|\(fqdn)"
            let reachable = catalog.allowsAnyHost && port > 0 && !fqdn.contains("*")
            compiled[name] = compiled[name] ?? Cluster(name: name, host: fqdn, port: port, subset: destination.subset,
                                                       discovery: reachable ? .dns : .staticAddresses,
                                                       endpoints: reachable ? [Endpoint(address: fqdn, port: port, labels: [:])] : [],
                                                       connectTimeoutNanoseconds: 10_000_000_000,
                                                       maxRequestsPerConnection: 0,
                                                       idleTimeoutNanoseconds: 3_600_000_000_000)
            return name
        }
        let ports = entry.spec.ports ?? []
        let servicePort = destination.port?.number.flatMap { number in ports.first { $0.number == number } } ?? ports.first
        let portNumber = Int(servicePort?.number ?? destination.port?.number ?? 0)
        let name = "outbound|\(portNumber)|\(destination.subset ?? "")|\(fqdn)"
        if compiled[name] != nil { return name }

        // The host's rules merged as Istio does: the first trafficPolicy, and each subset from the first
        // rule that defines it (which may be another rule).
        let rule = catalog.destinationRule(for: destination.host, namespace: namespace)
        let subsetOrigin = destination.subset.flatMap { catalog.subset($0, for: destination.host, namespace: namespace) }
        let subsetIndex = subsetOrigin?.index
        let subset = subsetOrigin.flatMap { $0.rule.spec.subsets?[$0.index] }
        let subsetLabels = subset?.labels ?? [:]
        // Subset policy replaces the top-level one section by section, and a port's settings replace all
        // four (Istio's MergeTrafficPolicy).
        let policy = ClusterTrafficPolicy.merged(rule: rule?.spec.trafficPolicy, subset: subset?.trafficPolicy,
                                                 subsetPath: "spec.subsets[\(subsetIndex ?? 0)].trafficPolicy",
                                                 port: UInt32(exactly: portNumber))
        let pool = policy.connectionPool

        var endpoints: [Endpoint] = []
        // The identities the service's workloads run as, for ISTIO_MUTUAL's SAN check (as Istio derives
        // them from the service accounts of its endpoints).
        var spiffeIDs: [String] = []
        func add(address: String, ports: [String: UInt32]?, labels: [String: String], serviceAccount: String? = nil,
                 namespace: String = entry.namespace, locality: String? = nil) {
            guard subsetLabels.allSatisfy({ labels[$0.key] == $0.value }) else { return }
            if let serviceAccount, !serviceAccount.isEmpty, let domain = defaults.meshIdentity?.trustDomain {
                let id = "spiffe://\(domain)/ns/\(namespace)/sa/\(serviceAccount)"
                if !spiffeIDs.contains(id) { spiffeIDs.append(id) }
            }
            let target = servicePort?.name.flatMap { ports?[$0] } ?? servicePort?.targetPort ?? servicePort?.number
            var endpoint = Endpoint(address: address, port: Int(target ?? UInt32(portNumber)), labels: labels)
            endpoint.locality = locality ?? ""
            endpoints.append(endpoint)
        }
        if let listed = entry.spec.endpoints {
            for endpoint in listed {
                if let address = endpoint.address {
                    add(address: address, ports: endpoint.ports, labels: endpoint.labels ?? [:], serviceAccount: endpoint.serviceAccount,
                        locality: endpoint.locality)
                }
            }
        } else if let selector = entry.spec.workloadSelector?.labels {
            for workload in set.workloadEntries where workload.namespace == entry.namespace {
                let labels = workload.labels.merging(workload.spec.labels ?? [:]) { _, spec in spec }
                guard selector.allSatisfy({ labels[$0.key] == $0.value }), let address = workload.spec.address else { continue }
                add(address: address, ports: workload.spec.ports, labels: labels, serviceAccount: workload.spec.serviceAccount,
                    namespace: workload.namespace, locality: workload.spec.locality)
            }
        } else if entry.spec.resolution == .DNS || entry.spec.resolution == .DNS_ROUND_ROBIN {
            // With no endpoints, DNS resolution targets the host itself.
            for host in entry.spec.hosts where !host.hasPrefix("*") { add(address: host, ports: nil, labels: [:]) }
        }
        let isStatic = entry.spec.resolution == .STATIC
            || endpoints.allSatisfy { $0.address.first?.isNumber == true || $0.address.contains(":") }
        let portProtocol = servicePort?.protocol?.uppercased()
        let discovery: Cluster.Discovery
        if (entry.spec.resolution ?? .NONE) == .NONE {
            let hosts = entry.spec.hosts.map { catalog.fqdn($0, namespace: entry.namespace) }
            discovery = .dynamicForward(hosts: hosts, port: Int(servicePort?.targetPort ?? servicePort?.number ?? UInt32(portNumber)))
        } else {
            discovery = isStatic ? .staticAddresses : .dns
        }
        compiled[name] = Cluster(
            name: name, host: fqdn, port: portNumber, subset: destination.subset,
            discovery: discovery,
            endpoints: endpoints,
            connectTimeoutNanoseconds: pool?.tcp?.connectTimeout?.nanoseconds ?? 10_000_000_000,
            maxRequestsPerConnection: Int(pool?.http?.maxRequestsPerConnection ?? 0),
            idleTimeoutNanoseconds: pool?.http?.idleTimeout?.nanoseconds ?? pool?.tcp?.idleTimeout?.nanoseconds
                ?? 3_600_000_000_000,
            http2: portProtocol == "HTTP2" || portProtocol == "GRPC" || pool?.http?.h2UpgradePolicy == .UPGRADE)
        compiled[name]?.serviceNamespace = entry.namespace
        compiled[name]?.loadBalancing = Self.loadBalancing(policy.loadBalancer, endpoints: endpoints)
        compiled[name]?.localityPlan = Self.localityPlan(policy.loadBalancer?.localityLbSetting, endpoints: endpoints,
                                                         gateway: defaults.locality, gatewayLabels: defaults.labels,
                                                         outlierDetection: policy.outlierDetection != nil)
        compiled[name]?.outlierDetection = policy.outlierDetection.map(Self.outlierPolicy)
        compiled[name]?.applyConnectionPool(pool)
        // The tls section's own rule, for its relative paths and its errors' location.
        if let owner = policy.tlsPath?.hasPrefix("spec.subsets") == true ? subsetOrigin?.rule : rule {
            let tls = upstreamTLS(policy, rule: owner, host: fqdn, port: portNumber, subset: destination.subset,
                                  http2: compiled[name]?.http2 ?? false,
                                  serviceIdentities: (entry.spec.subjectAltNames ?? []) + spiffeIDs)
            compiled[name]?.tls = tls
        }
        return name
    }

    /// A Kubernetes service no ServiceEntry declares: one endpoint, the service's FQDN, whose addresses
    /// the data plane resolves through DNS and keeps for their TTL. Validation requires the port.
    private mutating func kubernetesService(_ fqdn: String, destination: Destination) -> String {
        let port = Int(destination.port?.number ?? 0)
        let name = "outbound|\(port)||\(fqdn)"
        if compiled[name] != nil { return name }
        let rule = catalog.destinationRule(for: fqdn, namespace: "")
        let policy = ClusterTrafficPolicy.merged(rule: rule?.spec.trafficPolicy, subset: nil, port: UInt32(exactly: port))
        let pool = policy.connectionPool
        var cluster = Cluster(
            name: name, host: fqdn, port: port, subset: nil, discovery: .kubernetesService,
            endpoints: [Endpoint(address: fqdn, port: port, labels: [:])],
            connectTimeoutNanoseconds: pool?.tcp?.connectTimeout?.nanoseconds ?? 10_000_000_000,
            maxRequestsPerConnection: Int(pool?.http?.maxRequestsPerConnection ?? 0),
            idleTimeoutNanoseconds: pool?.http?.idleTimeout?.nanoseconds ?? pool?.tcp?.idleTimeout?.nanoseconds
                ?? 3_600_000_000_000,
            http2: pool?.http?.h2UpgradePolicy == .UPGRADE)
        cluster.loadBalancing = Self.loadBalancing(policy.loadBalancer, endpoints: cluster.endpoints)
        cluster.outlierDetection = policy.outlierDetection.map(Self.outlierPolicy)
        cluster.applyConnectionPool(pool)
        if let rule {
            cluster.tls = upstreamTLS(policy, rule: rule, host: fqdn, port: port, subset: nil, http2: cluster.http2,
                                      serviceIdentities: [])
        }
        // NAME.NAMESPACE.svc.DOMAIN: Istio's destination_service_namespace.
        cluster.serviceNamespace = fqdn.split(separator: ".").dropFirst().first.map(String.init) ?? ""
        compiled[name] = cluster
        return name
    }

    /// A `tls` section compiled; nil for DISABLE. `serviceIdentities` are the SANs the service's
    /// workloads may present (ServiceEntry `subjectAltNames`, SPIFFE ids of its WorkloadEntries), which
    /// ISTIO_MUTUAL checks when the rule names none.
    func upstreamTLS(_ policy: ClusterTrafficPolicy, rule: Resource<DestinationRuleSpec>, host: String, port: Int,
                     subset: String?, http2: Bool, serviceIdentities: [String]) -> UpstreamTLS? {
        guard let tls = policy.tls, let mode = tls.mode, mode != .DISABLE else { return nil }
        let origin = rule.diagnostic(policy.tlsPath ?? "spec.trafficPolicy.tls", "")
        func local(_ path: String) -> String { ConfigPath.resolve(path, against: rule.directory) }
        // A credential X is the directory X (tls.crt, tls.key, ca.crt), its CA possibly in X-cacert.
        let credential = tls.credentialName.map { ConfigPath.resolve($0, against: defaults.credentialsDirectory) }
        let credentialCA = tls.credentialName.map {
            ["\(credential!)/ca.crt", ConfigPath.resolve("\($0)-cacert/ca.crt", against: defaults.credentialsDirectory)]
        }
        let protocols = [http2 ? "h2" : "http/1.1"]
        switch mode {
        case .DISABLE:
            return nil
        case .SIMPLE, .MUTUAL:
            let mutual = mode == .MUTUAL
            return UpstreamTLS(
                mode: mutual ? .mutual : .simple,
                certificateChainPath: mutual ? credential.map { "\($0)/tls.crt" } ?? tls.clientCertificate.map(local) : nil,
                privateKeyPath: mutual ? credential.map { "\($0)/tls.key" } ?? tls.privateKey.map(local) : nil,
                caCertificatesPaths: credentialCA ?? tls.caCertificates.map { [local($0)] } ?? [],
                sni: tls.sni, subjectAltNames: tls.subjectAltNames ?? [], insecureSkipVerify: tls.insecureSkipVerify ?? false,
                applicationProtocols: protocols, origin: origin)
        case .ISTIO_MUTUAL:
            guard let identity = defaults.meshIdentity else { return nil }
            var origin = identity.origin
            origin.message = ""
            return UpstreamTLS(
                mode: .istioMutual, certificateChainPath: identity.certificateChainPath,
                privateKeyPath: identity.privateKeyPath, caCertificatesPaths: [identity.rootCertificatePath],
                // Istio's SNI for mesh traffic, which east-west gateways route by.
                sni: tls.sni ?? "outbound_.\(port)_.\(subset ?? "")_.\(host)",
                subjectAltNames: tls.subjectAltNames ?? serviceIdentities,
                insecureSkipVerify: tls.insecureSkipVerify ?? false,
                applicationProtocols: [http2 ? "istio-h2" : "istio-http/1.1", "istio"] + protocols, origin: origin)
        }
    }

    /// A `loadBalancer` section compiled. Validation has refused what this cannot honour (PASSTHROUGH,
    /// two hash keys, a cookie without a name), so those fall back to the default here only in theory.
    static func loadBalancing(_ settings: LoadBalancerSettings?, endpoints: [Endpoint]) -> LoadBalancing {
        if let hash = settings?.consistentHash {
            let source: HashKeySource
            if let name = hash.httpHeaderName {
                source = .header(name.lowercased())
            } else if let cookie = hash.httpCookie, let name = cookie.name {
                source = .cookie(HashCookie(name: name, path: cookie.path,
                                            ttlSeconds: (cookie.ttl?.nanoseconds ?? 0) / 1_000_000_000,
                                            attributes: (cookie.attributes ?? []).map { ($0.name ?? "", $0.value ?? "") }))
            } else if let name = hash.httpQueryParameterName {
                source = .queryParameter(name)
            } else if hash.useSourceIp == true {
                source = .sourceIP
            } else {
                return .leastRequest
            }
            // Named by address and port, which every replica of the gateway sees alike.
            let named = endpoints.map { HashedEndpoint(name: "\($0.address):\($0.port)") }
            if let maglev = hash.maglev {
                let size = maglev.tableSize.map { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 65537
                return .consistentHash(source, .maglev(MaglevTable(endpoints: named, tableSize: size)))
            }
            let ring = (hash.ringHash?.minimumRingSize ?? hash.minimumRingSize).map { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? 1024
            return .consistentHash(source, .ring(RingHashTable(endpoints: named, minimumRingSize: ring)))
        }
        switch settings?.simple {
        case .ROUND_ROBIN?: return .roundRobin
        case .RANDOM?: return .random
        case nil, .UNSPECIFIED?, .LEAST_REQUEST?, .LEAST_CONN?, .PASSTHROUGH?: return .leastRequest
        }
    }

    /// `localityLbSetting` as Istio applies it (mesh default: enabled): `distribute` when an entry's
    /// `from` matches the gateway's locality, else failover by priority — by `failoverPriority` labels
    /// when set, else by locality — which needs outlier detection (without it Envoy would never leave the
    /// first priority). Locality plans need the gateway's locality; label plans its labels.
    static func localityPlan(_ setting: LocalityLbSetting?, endpoints: [Endpoint], gateway: String,
                             gatewayLabels: [String: String] = [:], outlierDetection: Bool) -> LocalityPlan? {
        guard setting?.enabled != false, endpoints.count > 1 else { return nil }
        let localities = endpoints.map { Locality($0.locality) }
        let here = Locality(gateway)
        if let distribute = setting?.distribute, !distribute.isEmpty {
            guard !gateway.isEmpty else { return nil }
            return LocalityPlan.distribute(endpoints: localities, gateway: here, rules: distribute.map { rule in
                (rule.from ?? "", (rule.to ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, Int($0.value)) })
            })
        }
        guard outlierDetection else { return nil }
        if let labels = setting?.failoverPriority, !labels.isEmpty {
            // Both sides carry their locality as Istio's topology labels too.
            let mine = gatewayLabels.merging(LocalityPlan.topologyLabels(here)) { own, _ in own }
            return LocalityPlan.failoverPriority(
                endpoints: endpoints.map { $0.labels.merging(LocalityPlan.topologyLabels(Locality($0.locality))) { own, _ in own } },
                gateway: mine, labels: labels)
        }
        guard !gateway.isEmpty else { return nil }
        return LocalityPlan.failover(endpoints: localities, gateway: here,
                                     failover: (setting?.failover ?? []).map { ($0.from ?? "", $0.to ?? "") })
    }

    /// `outlierDetection` with Istio's defaults: 5 consecutive 5xx (0 turns it off), gateway errors off
    /// (the deprecated `consecutiveErrors` counts as them), a 10 s interval, 30 s base ejection, 10 %
    /// ejected at most, and no panic threshold.
    static func outlierPolicy(_ settings: OutlierDetectionSettings) -> OutlierPolicy {
        let gateway = settings.consecutiveGatewayErrors.map(Int.init) ?? settings.consecutiveErrors.map { Int(max($0, 0)) } ?? 0
        return OutlierPolicy(
            consecutive5xxErrors: settings.consecutive5xxErrors.map(Int.init) ?? 5,
            consecutiveGatewayErrors: gateway,
            interval: .nanoseconds(settings.interval?.nanoseconds ?? 10_000_000_000),
            baseEjectionTime: .nanoseconds(settings.baseEjectionTime?.nanoseconds ?? 30_000_000_000),
            maxEjectionPercent: Int(settings.maxEjectionPercent ?? 10),
            minHealthPercent: Int(settings.minHealthPercent ?? 0))
    }

    static func keepalive(_ settings: ConnectionPoolSettings.TCPKeepalive?) -> TCPKeepalivePolicy? {
        guard let settings else { return nil }
        func seconds(_ duration: ConfigDuration?) -> Int? { duration.map { Int(($0.nanoseconds + 999_999_999) / 1_000_000_000) } }
        return TCPKeepalivePolicy(probes: settings.probes.map(Int.init), timeSeconds: seconds(settings.time),
                                  intervalSeconds: seconds(settings.interval))
    }

    /// The `connectionPool` limits enforced as circuit breakers; 0 or unset is Istio's "no limit"
    /// (2³²-1). nil when none is set.
    static func circuitBreakers(_ pool: ConnectionPoolSettings?) -> CircuitBreakerLimits? {
        func limit(_ value: Int32?) -> Int? { value.flatMap { $0 > 0 ? Int($0) : nil } }
        let limits = CircuitBreakerLimits(maxConnections: limit(pool?.tcp?.maxConnections),
                                          maxRequests: limit(pool?.http?.http2MaxRequests),
                                          maxPendingRequests: limit(pool?.http?.http1MaxPendingRequests),
                                          maxRetries: limit(pool?.http?.maxRetries))
        return limits == CircuitBreakerLimits() ? nil : limits
    }
}

extension Cluster {
    /// The `connectionPool` settings besides the timeouts every cluster is made with: circuit-breaker
    /// limits, TCP keepalive and the connection age cap.
    mutating func applyConnectionPool(_ pool: ConnectionPoolSettings?) {
        circuitBreakers = ClusterCompiler.circuitBreakers(pool)
        tcpKeepalive = ClusterCompiler.keepalive(pool?.tcp?.tcpKeepalive)
        maxConnectionDurationNanoseconds = pool?.tcp?.maxConnectionDuration.flatMap { $0.nanoseconds > 0 ? $0.nanoseconds : nil }
    }
}
