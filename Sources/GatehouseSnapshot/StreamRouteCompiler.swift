import GatehouseConfig
import GatehouseRouting

/// Compiles VirtualService `tls[]` and `tcp[]` routes for PASSTHROUGH and TCP servers, with Istio's
/// binding rules: the VirtualService must list the Gateway, and `match` entries narrow by `gateways`
/// and `port`; a `tls` match's `sniHosts` are the SNI patterns it takes.
struct StreamRouteCompiler {
    let set: ConfigSet

    /// How a server is relayed, or nil if it is not a stream server. HTTPS or TLS with mode
    /// PASSTHROUGH (Istio's default mode) is SNI passthrough; TCP is a plain relay.
    static func mode(_ proto: ServerProtocol, _ tls: GatewaySpec.ServerTLSSettings?) -> StreamRoutes.Mode? {
        switch proto {
        case .TCP: return .tcp
        case .HTTPS, .TLS:
            let mode = tls?.mode ?? .PASSTHROUGH
            return mode == .PASSTHROUGH ? .tlsPassthrough : nil
        default: return nil
        }
    }

    /// A server takes a VirtualService's routes when the VirtualService lists its Gateway and one of the
    /// server's `hosts` (with its `ns/` filter) meets one of the VirtualService's `hosts`, as for HTTP.
    static func admits(_ server: SnapshotCompiler.BoundServer, _ vs: Resource<VirtualServiceSpec>,
                       boundTo gateways: Set<String>) -> Bool {
        guard gateways.contains(server.gateway.id) else { return false }
        return (server.server.hosts ?? []).contains { entry in
            let (filter, host) = RouteCompiler.splitServerHost(entry)
            if let filter, !RouteCompiler.namespaceAllowed(filter, virtualService: vs.namespace,
                                                          gateway: server.gateway.namespace) { return false }
            return (vs.spec.hosts ?? []).contains { RouteCompiler.intersect(host.lowercased(), $0.lowercased()) != nil }
        }
    }

    func compile(_ servers: [SnapshotCompiler.BoundServer], mode: StreamRoutes.Mode, port: Int,
                 clusters: inout ClusterCompiler) -> StreamRoutes {
        var sniRoutes: [(pattern: String, route: StreamRoutes.Route)] = []
        var tcpRoute: StreamRoutes.Route?
        let gatewayIDs = Set(servers.map(\.gateway.id))
        for vs in set.virtualServices where set.appliesToGateway(vs) {
            let bound = Set((vs.spec.gateways ?? []).map { ServiceCatalog.gatewayID($0, namespace: vs.namespace) })
            guard servers.contains(where: { Self.admits($0, vs, boundTo: bound) }) else { continue }
            func applies(_ gateways: [String]?, _ matchPort: UInt32?) -> Bool {
                if let matchPort, Int(matchPort) != port { return false }
                guard let gateways, !gateways.isEmpty else { return true }
                return gateways.contains { gatewayIDs.contains(ServiceCatalog.gatewayID($0, namespace: vs.namespace)) }
            }
            func forward(_ destinations: [RouteDestination]?) -> ForwardAction {
                ForwardAction(destinations: (destinations ?? []).map {
                    let cluster = clusters.reference($0.destination, namespace: vs.namespace)
                    return WeightedDestination(cluster: cluster.name, clusterIndex: cluster.index, weight: Int($0.weight ?? 0))
                })
            }
            switch mode {
            case .tlsPassthrough:
                for (index, route) in (vs.spec.tls ?? []).enumerated() {
                    let compiled = StreamRoutes.Route(name: "\(vs.id) tls[\(index)]", forward: forward(route.route))
                    for match in route.match ?? [] where applies(match.gateways, match.port) {
                        for sni in match.sniHosts ?? [] { sniRoutes.append((sni.lowercased(), compiled)) }
                    }
                }
            case .tcp:
                for (index, route) in (vs.spec.tcp ?? []).enumerated() where tcpRoute == nil {
                    let matches = route.match ?? []
                    if !matches.isEmpty, !matches.contains(where: { applies($0.gateways, $0.port) }) { continue }
                    tcpRoute = StreamRoutes.Route(name: "\(vs.id) tcp[\(index)]", forward: forward(route.route))
                }
            }
        }
        return StreamRoutes(mode: mode, sniRoutes: sniRoutes, tcpRoute: tcpRoute)
    }
}
