import Foundation
import GatehouseConfig
import GatehouseRouting

/// Compiles a validated `ConfigSet` into a `Snapshot`. Pure: no I/O, no clocks but the one passed in.
public enum SnapshotCompiler {
    public static func compile(_ set: ConfigSet, version: Int, now: Date = Date()) throws -> Snapshot {
        let catalog = ServiceCatalog(set)
        let settings = settings(from: set.bootstrap)
        var clusters = ClusterCompiler(set: set, catalog: catalog, defaults: settings)
        var listeners: [Listener] = []
        for (port, servers) in serversByPort(set, labels: settings.labels) {
            let routes = try RouteCompiler(set: set, catalog: catalog).virtualHosts(for: servers, port: port, clusters: &clusters)
            let bind = servers.compactMap(\.server.bind).first ?? "0.0.0.0"
            let gateways = Array(Set(servers.map(\.gateway.label))).sorted()
            listeners.append(Listener(port: port, bindAddress: bind, routes: RouteTable(virtualHosts: routes),
                                      gateways: gateways))
        }
        return Snapshot(version: version, loadedAt: now, listeners: listeners.sorted { $0.port < $1.port },
                        clusters: clusters.compiled, settings: settings, summary: set.summary)
    }

    struct BoundServer {
        var gateway: Resource<GatewaySpec>
        var server: GatewaySpec.Server
    }

    /// Servers of the Gateways whose selector picks this gateway (nil selector = all), by port.
    static func serversByPort(_ set: ConfigSet, labels: [String: String]) -> [(Int, [BoundServer])] {
        var byPort: [Int: [BoundServer]] = [:]
        for gateway in set.gateways {
            if let selector = gateway.spec.selector, !selector.allSatisfy({ labels[$0.key] == $0.value }) { continue }
            for server in gateway.spec.servers ?? [] {
                guard let proto = ServerProtocol(istio: server.port.protocol), proto.isPlainHTTP else { continue }
                byPort[Int(server.port.number), default: []].append(BoundServer(gateway: gateway, server: server))
            }
        }
        return byPort.sorted { $0.key < $1.key }
    }

    static func settings(from bootstrap: Resource<BootstrapSpec>?) -> GatewaySettings {
        let spec = bootstrap?.spec
        let limits = spec?.limits
        var logPath: String? = nil
        var logEnabled = true
        if let path = spec?.accessLog?.path, path != "-" {
            if path.isEmpty || path == "off" {
                logEnabled = false
            } else {
                logPath = path.hasPrefix("/") ? path : ((bootstrap?.directory ?? ".") as NSString).appendingPathComponent(path)
            }
        }
        return GatewaySettings(
            accessLogPath: logPath,
            accessLogEnabled: logEnabled,
            maxRequestHeaderBytes: Int(limits?.maxRequestHeadersKb ?? 60) * 1024,
            maxRequestHeaders: Int(limits?.maxRequestHeaders ?? 100),
            requestHeadersTimeoutNanoseconds: limits?.requestHeadersTimeout?.nanoseconds ?? 10_000_000_000,
            idleTimeoutNanoseconds: limits?.idleTimeout?.nanoseconds ?? 3_600_000_000_000,
            streamIdleTimeoutNanoseconds: limits?.streamIdleTimeout?.nanoseconds ?? 300_000_000_000,
            drainTimeoutNanoseconds: limits?.drainTimeout?.nanoseconds ?? 20_000_000_000,
            maxConnections: Int(limits?.maxConnections ?? 100_000),
            dnsRefreshNanoseconds: spec?.dns?.refreshRate?.nanoseconds ?? 30_000_000_000,
            labels: spec?.labels ?? [:],
            namespace: bootstrap?.namespace ?? "istio-system")
    }
}
