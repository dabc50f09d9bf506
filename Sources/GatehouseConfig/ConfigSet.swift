import GatehouseRegex
/// One decoded resource with its metadata and where it came from.
public struct Resource<Spec: Sendable>: Sendable {
    public var kind: ResourceKind
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    public var spec: Spec
    public var positions: FieldPositions
    /// The directory of the file it came from: relative paths in the spec resolve against it.
    public var directory: String
    /// Some fields failed to decode and are missing from `spec`: validation still checks what is there
    /// (so every problem is reported at once) but skips checks a missing field would trip falsely.
    public var hasDecodeErrors = false
    public var annotations: [String: String] = [:]

    /// `Kind ns/name`, the prefix of every diagnostic about this resource.
    public var label: String { "\(kind.rawValue) \(namespace)/\(name)" }
    public var id: String { "\(namespace)/\(name)" }

    public func diagnostic(_ path: String, _ message: String, severity: Diagnostic.Severity = .error) -> Diagnostic {
        Diagnostic(location: positions.location(of: path), resource: label, path: path, message: message,
                   severity: severity)
    }
}

public enum ResourceKind: String, Sendable, CaseIterable {
    case Bootstrap, RateLimitPolicy
    case Gateway, VirtualService, DestinationRule, ServiceEntry, WorkloadEntry
    case AuthorizationPolicy, RequestAuthentication, PeerAuthentication, Sidecar, EnvoyFilter, Telemetry
    case ProxyConfig, WorkloadGroup, WasmPlugin

    /// The API groups (and versions) each kind is accepted under.
    var apiVersions: [String] {
        switch self {
        case .Bootstrap, .RateLimitPolicy: ["gatehouse.dev/v1alpha1"]
        case .Gateway, .VirtualService, .DestinationRule, .ServiceEntry, .WorkloadEntry, .Sidecar:
            ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]
        case .WorkloadGroup:
            ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]
        case .EnvoyFilter: ["networking.istio.io/v1alpha3"]
        case .ProxyConfig: ["networking.istio.io/v1beta1"]
        case .AuthorizationPolicy, .RequestAuthentication, .PeerAuthentication:
            ["security.istio.io/v1", "security.istio.io/v1beta1"]
        case .Telemetry: ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"]
        case .WasmPlugin: ["extensions.istio.io/v1alpha1"]
        }
    }

    /// Kinds Istio applies to sidecars (or to VM registration), never to a gateway's listeners, routes or
    /// policies: loading them changes nothing a gateway does, so they are accepted and listed, not refused.
    public var notApplicableReason: String? {
        switch self {
        case .PeerAuthentication: "mTLS mode of workloads' inbound traffic (sidecars); a gateway's listeners take theirs from Gateway tls"
        case .Sidecar: "scopes sidecar proxies; Istio does not apply it to gateways"
        case .WorkloadGroup: "a template for VM workloads registering themselves; it declares no endpoints by itself"
        default: nil
        }
    }

    /// Kinds this build can enforce. The others are recognised so the error says what is going on instead
    /// of "unknown kind".
    var isSupported: Bool {
        switch self {
        case .Bootstrap, .Gateway, .VirtualService, .DestinationRule, .ServiceEntry, .WorkloadEntry,
             .AuthorizationPolicy, .RequestAuthentication, .RateLimitPolicy, .EnvoyFilter: true
        default: false
        }
    }
}

/// Everything loaded from the config paths, decoded but not yet validated across resources.
public struct ConfigSet: Sendable {
    public var bootstrap: Resource<BootstrapSpec>?
    public var gateways: [Resource<GatewaySpec>] = []
    public var virtualServices: [Resource<VirtualServiceSpec>] = []
    public var destinationRules: [Resource<DestinationRuleSpec>] = []
    public var serviceEntries: [Resource<ServiceEntrySpec>] = []
    public var workloadEntries: [Resource<WorkloadEntrySpec>] = []
    public var authorizationPolicies: [Resource<AuthorizationPolicySpec>] = []
    public var requestAuthentications: [Resource<RequestAuthenticationSpec>] = []
    public var rateLimitPolicies: [Resource<RateLimitPolicySpec>] = []
    /// EnvoyFilters: only Istio's local rate limit recipe is enforced (`EnvoyFilterChecks`).
    public var envoyFilters: [Resource<EnvoyFilterSpec>] = []
    /// Resources that decoded with errors: kept only so references to them resolve without cascades.
    public var brokenNames: Set<String> = []
    /// Istio resources read but not applied: they do not configure a gateway (listed by `validate` and
    /// `/config_dump`).
    public var notApplicable: [InapplicableResource] = []
    /// Kubernetes resources (Deployment, Service, ServiceAccount…) in the same files, skipped: by kind.
    public var skippedKubernetes: [String: Int] = [:]
    public var files: [String] = []
    /// The regexes of this load, compiled once for validation and compilation alike.
    public let regexes = RegexCache()

    public init() {}

    public var resourceCount: Int {
        (bootstrap == nil ? 0 : 1) + gateways.count + virtualServices.count + destinationRules.count
            + serviceEntries.count + workloadEntries.count + authorizationPolicies.count + requestAuthentications.count
            + rateLimitPolicies.count + envoyFilters.count
    }

    /// Bootstrap `clusterDomain`: what short service names expand into.
    public var clusterDomain: String { bootstrap?.spec.clusterDomain?.lowercased() ?? "cluster.local" }

    /// The namespaces loaded resources live in.
    public var namespaces: Set<String> {
        var out: Set<String> = []
        gateways.forEach { out.insert($0.namespace) }
        virtualServices.forEach { out.insert($0.namespace) }
        destinationRules.forEach { out.insert($0.namespace) }
        serviceEntries.forEach { out.insert($0.namespace) }
        workloadEntries.forEach { out.insert($0.namespace) }
        authorizationPolicies.forEach { out.insert($0.namespace) }
        requestAuthentications.forEach { out.insert($0.namespace) }
        rateLimitPolicies.forEach { out.insert($0.namespace) }
        envoyFilters.forEach { out.insert($0.namespace) }
        return out
    }

    /// Everything in `notApplicable`, plus VirtualServices bound to no Gateway (Istio applies those to the
    /// mesh's sidecars only).
    public var inapplicable: [InapplicableResource] {
        let catalog = ServiceCatalog(self)
        let routed = gatewayDestinationHosts(catalog)
        let meshOnly = virtualServices.filter { !appliesToGateway($0) }.map { service in
            InapplicableResource(label: service.label, location: service.positions.location(of: ""),
                                 reason: service.spec.isBoundToGateway
                                    ? "exportTo does not include the gateway's namespace \(gatewayNamespace)"
                                    : "lists no Gateway in spec.gateways, so Istio applies it to the mesh's sidecars only")
        }
        let unreached = destinationRules.filter { !destinationRuleApplies($0, routedHosts: routed, catalog) }.map { rule in
            InapplicableResource(label: rule.label, location: rule.positions.location(of: ""),
                                 reason: "no route bound to a Gateway sends traffic to \(rule.spec.host)")
        }
        let otherWorkloads = envoyFilters.filter { !EnvoyFilterChecks.applies($0, bootstrap: bootstrap) }.map { filter in
            InapplicableResource(label: filter.label, location: filter.positions.location(of: ""),
                                 reason: "its namespace, workloadSelector or targetRefs select other workloads than this gateway")
        }
        let sidecarOnly = envoyFilters.filter { filter in
            EnvoyFilterChecks.applies(filter, bootstrap: bootstrap) && !(filter.spec.configPatches ?? []).isEmpty
                && !(filter.spec.configPatches ?? []).contains(where: EnvoyFilterChecks.forGateway)
        }.map { filter in
            InapplicableResource(label: filter.label, location: filter.positions.location(of: ""),
                                 reason: "every patch has a sidecar context, which Istio does not apply to a gateway")
        }
        return notApplicable + meshOnly + unreached + otherWorkloads + sidecarOnly
    }

    /// A one-line summary, printed by `validate` and at start-up.
    public var summary: String {
        "\(files.count) file(s): \(bootstrap == nil ? 0 : 1) Bootstrap, \(gateways.count) Gateway, "
            + "\(virtualServices.count) VirtualService, \(destinationRules.count) DestinationRule, "
            + "\(serviceEntries.count) ServiceEntry, \(workloadEntries.count) WorkloadEntry, "
            + "\(authorizationPolicies.count) AuthorizationPolicy, \(requestAuthentications.count) RequestAuthentication"
            + (rateLimitPolicies.isEmpty ? "" : ", \(rateLimitPolicies.count) RateLimitPolicy")
            + (envoyFilters.isEmpty ? "" : ", \(envoyFilters.count) EnvoyFilter")
    }
}

/// A resource that was read but does not configure a gateway, and why.
public struct InapplicableResource: Sendable, Hashable {
    /// `Kind ns/name`.
    public var label: String
    public var location: SourceLocation
    public var reason: String
}
