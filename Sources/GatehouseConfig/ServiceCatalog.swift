/// Resolves the names resources use for each other: service hosts (with Istio's short-name expansion),
/// gateway references and subsets. The validator and the snapshot compiler share it, so a reference that
/// validates is exactly a reference that compiles.
public struct ServiceCatalog: Sendable {
    public let domainSuffix: String
    private var serviceEntriesByHost: [String: Resource<ServiceEntrySpec>] = [:]
    private var gatewaysByID: [String: Resource<GatewaySpec>] = [:]
    /// Every DestinationRule visible to the gateway, in load order, with its host as an FQDN or pattern.
    private var visibleRules: [(host: String, rule: Resource<DestinationRuleSpec>)] = []
    /// Istio's config root namespace (Bootstrap `rootNamespace`): its rules apply mesh-wide.
    private let rootNamespace: String
    private let brokenNames: Set<String>
    /// Bootstrap `dns.kubernetesServices` (on unless turned off).
    public let resolvesKubernetesServices: Bool
    /// Bootstrap `outboundTrafficPolicy: ALLOW_ANY`: a route may name a host no ServiceEntry declares.
    public let allowsAnyHost: Bool
    /// Namespaces some loaded resource lives in: `NAME.NAMESPACE` is a service name only for these.
    private let namespaces: Set<String>
    /// The gateway's own namespace (its Bootstrap's): what `exportTo` is checked against.
    public let gatewayNamespace: String

    public init(_ set: ConfigSet) {
        let domainSuffix = set.clusterDomain
        self.domainSuffix = domainSuffix
        brokenNames = set.brokenNames
        resolvesKubernetesServices = set.bootstrap?.spec.dns?.kubernetesServices ?? true
        allowsAnyHost = set.bootstrap?.spec.outboundTrafficPolicy == .ALLOW_ANY
        rootNamespace = set.bootstrap?.spec.rootNamespace ?? "istio-system"
        namespaces = set.namespaces
        gatewayNamespace = set.gatewayNamespace
        let viewer = set.gatewayNamespace
        for entry in set.serviceEntries where ExportTo.isVisible(entry.spec.exportTo, from: entry.namespace, to: viewer) {
            for host in entry.spec.hosts where serviceEntriesByHost[Self.fqdn(host, namespace: entry.namespace, domainSuffix)] == nil {
                serviceEntriesByHost[Self.fqdn(host, namespace: entry.namespace, domainSuffix)] = entry
            }
        }
        for gateway in set.gateways { gatewaysByID[gateway.id] = gateway }
        for rule in set.destinationRules where ExportTo.isVisible(rule.spec.exportTo, from: rule.namespace, to: viewer) {
            visibleRules.append((Self.fqdn(rule.spec.host, namespace: rule.namespace, domainSuffix), rule))
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

    /// The DestinationRule whose top-level `trafficPolicy` a host's clusters get. Istio merges the rules
    /// of one host: the first (in load order) that has a `trafficPolicy` gives it, and each subset comes
    /// from the first rule that defines its name (`subset(_:for:namespace:)`).
    public func destinationRule(for host: String, namespace: String) -> Resource<DestinationRuleSpec>? {
        let rules = destinationRules(for: host, namespace: namespace)
        return rules.first { $0.spec.trafficPolicy != nil } ?? rules.first
    }

    /// The DestinationRules that configure traffic to `host` (named from `namespace`), as Istio picks
    /// them for a gateway: from the gateway's namespace, else the service's, else the root namespace
    /// (a rule elsewhere does not apply); within that namespace the most specific host wins (the exact
    /// name, else the longest `*.suffix`, else `*`), and the rules with that host merge, in load order.
    public func destinationRules(for host: String, namespace: String) -> [Resource<DestinationRuleSpec>] {
        let target = kubernetesService(for: host, namespace: namespace) ?? fqdn(host, namespace: namespace)
        let serviceNamespace = serviceEntry(for: host, namespace: namespace)?.namespace
            ?? kubernetesService(for: host, namespace: namespace).flatMap { $0.split(separator: ".").dropFirst().first.map(String.init) }
        var seen: Set<String> = []
        for candidate in [gatewayNamespace, serviceNamespace, rootNamespace].compactMap({ $0 }) where seen.insert(candidate).inserted {
            let matching = visibleRules.filter { $0.rule.namespace == candidate && HostPattern.covers($0.host, target) }
            guard let best = matching.map(\.host).max(by: { Self.specificity($0, for: target) < Self.specificity($1, for: target) }) else {
                continue
            }
            return matching.filter { $0.host == best }.map(\.rule)
        }
        return []
    }

    /// Exact beats any pattern; a longer pattern beats a shorter one.
    static func specificity(_ pattern: String, for host: String) -> Int {
        pattern == host ? Int.max : pattern.count
    }

    /// The first definition of subset `name` among a host's rules: the rule and the subset's index in it.
    public func subset(_ name: String, for host: String, namespace: String) -> (rule: Resource<DestinationRuleSpec>, index: Int)? {
        for rule in destinationRules(for: host, namespace: namespace) {
            if let index = rule.spec.subsets?.firstIndex(where: { $0.name == name }) { return (rule, index) }
        }
        return nil
    }

    /// The FQDN of the Kubernetes service `host` names, when no ServiceEntry declares it and it has the
    /// shape of one: `NAME` (in the naming resource's namespace), `NAME.NAMESPACE` (for a namespace
    /// some resource lives in, so `example.com` is never taken for one) or `NAME.NAMESPACE.svc.DOMAIN`.
    /// Istio resolves these from the cluster's registry; Gatehouse resolves them through DNS.
    public func kubernetesService(for host: String, namespace: String) -> String? {
        guard resolvesKubernetesServices, serviceEntry(for: host, namespace: namespace) == nil else { return nil }
        let lower = host.lowercased()
        guard !HostName.isIPAddress(lower), HostName.problem(lower, allowWildcard: false) == nil else { return nil }
        let labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy({ !$0.isEmpty }) else { return nil }
        switch labels.count {
        case 1: return "\(lower).\(namespace).svc.\(domainSuffix)"
        case 2: return namespaces.contains(String(labels[1])) || labels[1] == namespace ? "\(lower).svc.\(domainSuffix)" : nil
        default:
            let suffix = ".svc.\(domainSuffix)"
            guard lower.hasSuffix(suffix) else { return nil }
            return lower.dropLast(suffix.count).split(separator: ".").count == 2 ? lower : nil
        }
    }

    public var knownHosts: [String] { Array(serviceEntriesByHost.keys) }

    /// A VirtualService configures this gateway: it lists a Gateway and is exported to its namespace.
    public func appliesToGateway(_ service: Resource<VirtualServiceSpec>) -> Bool {
        service.configuresGateway(in: gatewayNamespace)
    }
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

extension ConfigSet {
    /// The FQDNs routes bound to a Gateway send traffic to.
    public func gatewayDestinationHosts(_ catalog: ServiceCatalog) -> Set<String> {
        var out: Set<String> = []
        for service in virtualServices where appliesToGateway(service) {
            var destinations: [Destination] = []
            for route in service.spec.http ?? [] { destinations += (route.route ?? []).map(\.destination) }
            for route in service.spec.tls ?? [] { destinations += (route.route ?? []).map(\.destination) }
            for route in service.spec.tcp ?? [] { destinations += (route.route ?? []).map(\.destination) }
            for destination in destinations {
                out.insert(catalog.kubernetesService(for: destination.host, namespace: service.namespace)
                    ?? catalog.fqdn(destination.host, namespace: service.namespace))
            }
        }
        return out
    }

    /// A DestinationRule configures this gateway only if Istio's lookup picks it for a host some gateway
    /// route reaches (its host covers that host, and no rule of a namespace searched first, or of a more
    /// specific host, takes its place).
    public func destinationRuleApplies(_ rule: Resource<DestinationRuleSpec>, routedHosts: Set<String>,
                                       _ catalog: ServiceCatalog) -> Bool {
        // Applies when it is among the rules Istio's lookup picks for some routed host.
        routedHosts.contains { host in catalog.destinationRules(for: host, namespace: "").contains { $0.label == rule.label } }
    }
}
