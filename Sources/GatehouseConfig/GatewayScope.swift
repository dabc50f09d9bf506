/// Which gateway a policy-like resource (AuthorizationPolicy, RequestAuthentication, RateLimitPolicy,
/// EnvoyFilter) applies to, as Istio decides it: the gateway's own namespace or the root namespace, and
/// a `targetRef(s)` naming the gateway (kind Gateway, the Bootstrap's name, same namespace) or else a
/// selector whose labels the gateway has (none: every workload).
public struct GatewayScope: Sendable {
    public var namespace: String
    public var rootNamespace: String
    public var name: String
    public var labels: [String: String]

    public init(namespace: String, rootNamespace: String, name: String, labels: [String: String]) {
        self.namespace = namespace
        self.rootNamespace = rootNamespace
        self.name = name
        self.labels = labels
    }

    /// The gateway the Bootstrap describes (Istio's defaults without one).
    public init(bootstrap: Resource<BootstrapSpec>?) {
        self.init(namespace: bootstrap?.namespace ?? "istio-system",
                  rootNamespace: bootstrap?.spec.rootNamespace ?? "istio-system",
                  name: bootstrap?.name ?? "", labels: bootstrap?.spec.labels ?? [:])
    }

    public func admits(namespace resourceNamespace: String, selector: [String: String]?,
                       targetRefs: [PolicyTargetReference]) -> Bool {
        guard resourceNamespace == namespace || resourceNamespace == rootNamespace else { return false }
        if !targetRefs.isEmpty {
            return resourceNamespace == namespace && targetRefs.contains { ref in
                ref.kind == "Gateway" && (ref.group ?? "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
                    && ref.name == name
            }
        }
        return (selector ?? [:]).allSatisfy { labels[$0.key] == $0.value }
    }
}
