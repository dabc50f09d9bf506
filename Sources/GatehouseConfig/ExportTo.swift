/// Istio's `exportTo` on VirtualService, DestinationRule and ServiceEntry: which namespaces' proxies see
/// the resource. The gateway is a proxy in its Bootstrap's namespace, so a resource not exported there
/// does not configure it (Istio: the gateway never receives it).
public enum ExportTo {
    /// Unset or empty: everywhere (the mesh default). `.`: the resource's own namespace; `*`: all;
    /// `~`: none; otherwise namespace names.
    public static func isVisible(_ exportTo: [String]?, from namespace: String, to viewer: String) -> Bool {
        guard let list = exportTo, !list.isEmpty else { return true }
        return list.contains { $0 == "*" || ($0 == "." ? namespace == viewer : $0 == viewer) }
    }

    /// What Istio's validation refuses in an `exportTo` list.
    static func problems<S>(_ exportTo: [String]?, in resource: Resource<S>) -> [Diagnostic] {
        guard let list = exportTo else { return [] }
        var out: [Diagnostic] = []
        for (index, value) in list.enumerated() where value != "." && value != "*" && value != "~" {
            if HostName.problem(value, allowWildcard: false) != nil || value.contains(".") {
                out.append(resource.diagnostic("spec.exportTo[\(index)]", "expected \".\", \"*\", \"~\" or a namespace name, got \"\(value)\""))
            }
        }
        if list.contains("~"), list.count > 1 {
            out.append(resource.diagnostic("spec.exportTo", "\"~\" (export to no namespace) cannot be combined with other values"))
        }
        if list.contains("*"), list.count > 1 {
            out.append(resource.diagnostic("spec.exportTo", "\"*\" (export to every namespace) cannot be combined with other values"))
        }
        return out
    }
}

extension ConfigSet {
    /// The namespace the gateway runs in (its Bootstrap's), as Istio's proxy namespace.
    public var gatewayNamespace: String { bootstrap?.namespace ?? "istio-system" }

    /// A VirtualService configures this gateway: it lists a Gateway and is exported to its namespace.
    public func appliesToGateway(_ service: Resource<VirtualServiceSpec>) -> Bool {
        service.configuresGateway(in: gatewayNamespace)
    }
}

extension Resource where Spec == VirtualServiceSpec {
    /// Configures a gateway running in `gatewayNamespace`: lists a Gateway and is exported there.
    public func configuresGateway(in gatewayNamespace: String) -> Bool {
        spec.isBoundToGateway && ExportTo.isVisible(spec.exportTo, from: namespace, to: gatewayNamespace)
    }
}
