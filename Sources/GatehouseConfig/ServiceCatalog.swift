/// Resolves the names resources use for each other: service hosts (with Istio's short-name expansion),
/// gateway references and subsets. The validator and the snapshot compiler share it, so a reference that
/// validates is exactly a reference that compiles.
public struct ServiceCatalog: Sendable {
    public let domainSuffix: String
    private var serviceEntriesByHost: [String: Resource<ServiceEntrySpec>] = [:]
    private var gatewaysByID: [String: Resource<GatewaySpec>] = [:]
    private var destinationRulesByHost: [String: Resource<DestinationRuleSpec>] = [:]
    private let brokenNames: Set<String>

    public init(_ set: ConfigSet, domainSuffix: String = "cluster.local") {
        self.domainSuffix = domainSuffix
        brokenNames = set.brokenNames
        for entry in set.serviceEntries {
            for host in entry.spec.hosts where serviceEntriesByHost[Self.fqdn(host, namespace: entry.namespace, domainSuffix)] == nil {
                serviceEntriesByHost[Self.fqdn(host, namespace: entry.namespace, domainSuffix)] = entry
            }
        }
        for gateway in set.gateways { gatewaysByID[gateway.id] = gateway }
        // The first DestinationRule for a host wins, as in Istio.
        for rule in set.destinationRules {
            let host = Self.fqdn(rule.spec.host, namespace: rule.namespace, domainSuffix)
            if destinationRulesByHost[host] == nil { destinationRulesByHost[host] = rule }
        }
    }

    /// Istio's short-name rule: a name without dots is a Kubernetes service in the namespace of the
    /// resource that names it.
    public static func fqdn(_ host: String, namespace: String, _ domainSuffix: String = "cluster.local") -> String {
        let lower = host.lowercased()
        return lower.contains(".") || lower == "*" ? lower : "\(lower).\(namespace).svc.\(domainSuffix)"
    }

    public func fqdn(_ host: String, namespace: String) -> String { Self.fqdn(host, namespace: namespace, domainSuffix) }

    public func serviceEntry(for host: String, namespace: String) -> Resource<ServiceEntrySpec>? {
        serviceEntriesByHost[fqdn(host, namespace: namespace)]
    }

    public func destinationRule(for host: String, namespace: String) -> Resource<DestinationRuleSpec>? {
        destinationRulesByHost[fqdn(host, namespace: namespace)]
    }

    public var knownHosts: [String] { Array(serviceEntriesByHost.keys) }
    public var knownGatewayIDs: [String] { Array(gatewaysByID.keys) }

    /// `ns/name` for a VirtualService's gateway reference (a bare name means the VirtualService's namespace).
    public static func gatewayID(_ reference: String, namespace: String) -> String {
        reference.contains("/") ? reference : "\(namespace)/\(reference)"
    }

    public func gateway(_ reference: String, namespace: String) -> Resource<GatewaySpec>? {
        gatewaysByID[Self.gatewayID(reference, namespace: namespace)]
    }

    public func isBrokenGateway(_ reference: String, namespace: String) -> Bool {
        brokenNames.contains("Gateway \(Self.gatewayID(reference, namespace: namespace))")
    }

    /// True when some ServiceEntry failed to decode: an unknown host may then be its, so it is not reported.
    public var hasBrokenServiceEntries: Bool { brokenNames.contains { $0.hasPrefix("ServiceEntry ") } }
    public var hasBrokenDestinationRules: Bool { brokenNames.contains { $0.hasPrefix("DestinationRule ") } }
}
