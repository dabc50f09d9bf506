/// The four DestinationRule sections one cluster (host, port, subset) is built from, after Istio's
/// `MergeTrafficPolicy`: the rule's top-level policy, whose `portLevelSettings` entry for the port
/// replaces all four sections at once; then each section the subset's policy sets; then the subset's own
/// `portLevelSettings` entry for the port, again all four at once. A port-level entry does not inherit:
/// a section it omits takes the default, not the level above.
public struct ClusterTrafficPolicy: Sendable, Hashable {
    public var loadBalancer: LoadBalancerSettings?
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetectionSettings?
    public var tls: ClientTLSSettings?
    /// Where the `tls` section came from in the rule (for errors about its files).
    public var tlsPath: String?

    public init(loadBalancer: LoadBalancerSettings? = nil, connectionPool: ConnectionPoolSettings? = nil,
                outlierDetection: OutlierDetectionSettings? = nil, tls: ClientTLSSettings? = nil) {
        self.loadBalancer = loadBalancer
        self.connectionPool = connectionPool
        self.outlierDetection = outlierDetection
        self.tls = tls
    }

    /// `subsetPath` locates the subset's policy (`spec.subsets[N].trafficPolicy`) for `tlsPath`.
    public static func merged(rule: TrafficPolicy?, subset: TrafficPolicy?, subsetPath: String = "", port: UInt32?) -> ClusterTrafficPolicy {
        var merged = atPort(rule, path: "spec.trafficPolicy", port: port)
        guard let subset else { return merged }
        if let value = subset.loadBalancer { merged.loadBalancer = value }
        if let value = subset.connectionPool { merged.connectionPool = value }
        if let value = subset.outlierDetection { merged.outlierDetection = value }
        if let value = subset.tls {
            merged.tls = value
            merged.tlsPath = "\(subsetPath).tls"
        }
        if let port, let index = subset.portLevelSettings?.firstIndex(where: { $0.port?.number == port }) {
            merged = ClusterTrafficPolicy(subset.portLevelSettings![index], path: "\(subsetPath).portLevelSettings[\(index)]")
        }
        return merged
    }

    /// One level's sections, its port-level entry for `port` replacing them if there is one.
    private static func atPort(_ policy: TrafficPolicy?, path: String, port: UInt32?) -> ClusterTrafficPolicy {
        guard let policy else { return ClusterTrafficPolicy() }
        if let port, let index = policy.portLevelSettings?.firstIndex(where: { $0.port?.number == port }) {
            return ClusterTrafficPolicy(policy.portLevelSettings![index], path: "\(path).portLevelSettings[\(index)]")
        }
        var merged = ClusterTrafficPolicy(loadBalancer: policy.loadBalancer, connectionPool: policy.connectionPool,
                                          outlierDetection: policy.outlierDetection, tls: policy.tls)
        if policy.tls != nil { merged.tlsPath = "\(path).tls" }
        return merged
    }

    init(_ level: PortTrafficPolicy, path: String) {
        self.init(loadBalancer: level.loadBalancer, connectionPool: level.connectionPool,
                  outlierDetection: level.outlierDetection, tls: level.tls)
        if level.tls != nil { tlsPath = "\(path).tls" }
    }
}
