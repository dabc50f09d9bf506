import GatehouseRouting

/// A port whose connections are relayed as bytes, not parsed: TLS PASSTHROUGH servers (routed by the
/// ClientHello's SNI with VirtualService `tls[]` routes, never decrypted) and TCP servers (`tcp[]` routes).
public struct StreamRoutes: Sendable {
    public enum Mode: Sendable, Equatable { case tlsPassthrough, tcp }

    public struct Route: Sendable {
        /// `VirtualService ns/name tls[i]`, for the log's `route_name`.
        public var name: String
        public var forward: ForwardAction
    }

    public var mode: Mode
    /// TLS: routes by SNI pattern (exact, longest `*.suffix`, `*`), first route per pattern wins.
    private let bySNI: HostIndex<Route>
    /// TCP: the first `tcp[]` route that applies to the port.
    private let any: Route?

    public init(mode: Mode, sniRoutes: [(pattern: String, route: Route)], tcpRoute: Route?) {
        self.mode = mode
        bySNI = HostIndex(sniRoutes.map { ($0.pattern, $0.route) })
        any = tcpRoute
    }

    /// The route for a connection; nil: none applies and the connection is closed.
    public func route(forSNI sni: String?) -> Route? {
        switch mode {
        case .tcp: return any
        case .tlsPassthrough:
            guard let sni, !sni.isEmpty else { return nil }
            return bySNI.lookup(sni)
        }
    }
}
