/// networking.istio.io ServiceEntry: a service (often external) and how to reach its endpoints.
public struct ServiceEntrySpec: Decodable, Sendable, Hashable {
    public enum Location: String, ConfigEnum { case MESH_EXTERNAL, MESH_INTERNAL }
    public enum Resolution: String, ConfigEnum { case NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS }

    public struct ServicePort: Decodable, Sendable, Hashable {
        public var number: UInt32
        public var `protocol`: String?
        public var name: String?
        public var targetPort: UInt32?
    }

    public struct WorkloadSelector: Decodable, Sendable, Hashable {
        public var labels: [String: String]?
    }

    public var hosts: [String]
    public var addresses: [String]?
    public var ports: [ServicePort]?
    public var location: Location?
    public var resolution: Resolution?
    public var endpoints: [WorkloadEntrySpec]?
    public var workloadSelector: WorkloadSelector?
    public var exportTo: [String]?
    public var subjectAltNames: [String]?
}

/// networking.istio.io WorkloadEntry (also the shape of a ServiceEntry endpoint).
public struct WorkloadEntrySpec: Decodable, Sendable, Hashable {
    public var address: String?
    public var ports: [String: UInt32]?
    public var labels: [String: String]?
    public var network: String?
    public var locality: String?
    public var weight: UInt32?
    public var serviceAccount: String?
}
