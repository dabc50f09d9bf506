/// Sorts documents that are not Istio's or Gatehouse's own. Platform teams keep Deployments, Services and
/// ServiceAccounts in the same files as their Istio resources; those do not configure a gateway and are
/// skipped (counted in one notice). What *would* configure an Istio gateway stays an error, because
/// skipping it would silently serve something other than what the cluster serves.
enum ForeignResource {
    enum Verdict: Equatable {
        /// An `*.istio.io` or `gatehouse.dev` resource (or one without apiVersion): decoded as usual.
        case istio
        case skip
        case refuse(String)
    }

    static func classify(apiVersion: String, kind: String, _ root: YAMLNode) -> Verdict {
        guard !apiVersion.isEmpty else { return .istio }
        let group = apiVersion.contains("/") ? String(apiVersion.prefix { $0 != "/" }) : ""
        if group == "gatehouse.dev" || group == "istio.io" || group.hasSuffix(".istio.io") { return .istio }
        if group == "gateway.networking.k8s.io" {
            return .refuse("Kubernetes Gateway API \(kind) would configure an Istio gateway, and this version of Gatehouse "
                + "does not implement the Gateway API; write it as an Istio Gateway and VirtualService")
        }
        // One of Istio's or Gatehouse's kinds under another group is a typo in apiVersion, never a
        // Kubernetes resource to skip: the apiVersion check reports it.
        if ResourceKind(rawValue: kind) != nil { return .istio }
        if kind == "Ingress", group == "networking.k8s.io" || group == "extensions" {
            let className = root["spec"]?["ingressClassName"]?.string
                ?? root["metadata"]?["annotations"]?["kubernetes.io/ingress.class"]?.string
            if className == "istio" {
                return .refuse("an Ingress of class istio would configure the Istio ingress gateway, and this version of "
                    + "Gatehouse does not read Ingress; write it as an Istio Gateway and VirtualService")
            }
        }
        return .skip
    }
}
