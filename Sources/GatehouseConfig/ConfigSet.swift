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

    /// Kinds this build can enforce. The others are recognised so the error says what is going on instead
    /// of "unknown kind".
    var isSupported: Bool {
        switch self {
        case .Bootstrap, .Gateway, .VirtualService, .DestinationRule, .ServiceEntry, .WorkloadEntry,
             .AuthorizationPolicy, .RequestAuthentication: true
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
    /// Resources that decoded with errors: kept only so references to them resolve without cascades.
    public var brokenNames: Set<String> = []
    public var files: [String] = []

    public init() {}

    public var resourceCount: Int {
        (bootstrap == nil ? 0 : 1) + gateways.count + virtualServices.count + destinationRules.count
            + serviceEntries.count + workloadEntries.count + authorizationPolicies.count + requestAuthentications.count
    }

    /// A one-line summary, printed by `validate` and at start-up.
    public var summary: String {
        "\(files.count) file(s): \(bootstrap == nil ? 0 : 1) Bootstrap, \(gateways.count) Gateway, "
            + "\(virtualServices.count) VirtualService, \(destinationRules.count) DestinationRule, "
            + "\(serviceEntries.count) ServiceEntry, \(workloadEntries.count) WorkloadEntry, "
            + "\(authorizationPolicies.count) AuthorizationPolicy, \(requestAuthentications.count) RequestAuthentication"
    }
}
