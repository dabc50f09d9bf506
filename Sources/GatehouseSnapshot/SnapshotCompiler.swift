import Foundation
import GatehouseConfig
import GatehouseRouting

/// Compiles a validated `ConfigSet` into a `Snapshot`. Pure: no I/O, no clocks but the one passed in.
public enum SnapshotCompiler {
    /// Compiles a set checked by `ConfigPipeline`; throws `ConfigRefused` if it has errors.
    public static func compile(_ loaded: LoadedConfig, version: Int, now: Date = Date()) throws -> Snapshot {
        guard !loaded.hasErrors else { throw ConfigRefused(errors: loaded.diagnostics.errors) }
        let set = loaded.set
        let catalog = ServiceCatalog(set)
        let settings = settings(from: set.bootstrap)
        var clusters = ClusterCompiler(set: set, catalog: catalog, defaults: settings)
        var listeners: [Listener] = []
        for (port, servers) in serversByPort(set, labels: settings.labels) {
            let bind = servers.compactMap(\.server.bind).first ?? "0.0.0.0"
            let gateways = Array(Set(servers.map(\.gateway.label))).sorted()
            let compiler = RouteCompiler(set: set, catalog: catalog)
            if let mode = servers.first?.streamMode {
                let stream = StreamRouteCompiler(set: set).compile(servers, mode: mode, port: port, clusters: &clusters)
                listeners.append(Listener(port: port, bindAddress: bind, routes: RouteTable(virtualHosts: []),
                                          stream: stream, gateways: gateways))
            } else if servers.allSatisfy({ $0.terminatesTLS }) {
                var tlsServers: [TLSServer] = []
                for bound in servers {
                    let routes = try compiler.virtualHosts(for: [bound], port: port, clusters: &clusters)
                    tlsServers.append(TLSServerCompiler.compile(bound, routes: RouteTable(virtualHosts: routes),
                                                                credentialsDirectory: settings.credentialsDirectory))
                }
                listeners.append(Listener(port: port, bindAddress: bind, routes: RouteTable(virtualHosts: []),
                                          tls: TLSServers(tlsServers), gateways: gateways))
            } else {
                let routes = try compiler.virtualHosts(for: servers, port: port, clusters: &clusters)
                listeners.append(Listener(port: port, bindAddress: bind, routes: RouteTable(virtualHosts: routes),
                                          gateways: gateways))
            }
        }
        let security = SecurityCompiler(parsed: loaded.security, settings: settings)
        for index in listeners.indices {
            listeners[index].authorization = security.authorization(port: listeners[index].port,
                                                                    tcp: listeners[index].stream != nil)
        }
        return Snapshot(version: version, loadedAt: now, listeners: listeners.sorted { $0.port < $1.port },
                        clusterList: clusters.list, settings: settings, summary: set.summary,
                        authentication: security.authentication,
                        rateLimits: RateLimitCompiler.compile(loaded.security.rateLimitPolicies, scope: security, set: set),
                        notApplicable: set.inapplicable,
                        skippedKubernetes: set.skippedKubernetes)
    }

    /// Compiles a set decoded and model-checked elsewhere (tests): its security resources are parsed
    /// here, and any error among them refuses the compile.
    public static func compile(_ set: ConfigSet, version: Int, now: Date = Date()) throws -> Snapshot {
        try compile(ConfigPipeline.checked(set, diagnostics: []), version: version, now: now)
    }

    struct BoundServer {
        var gateway: Resource<GatewaySpec>
        var server: GatewaySpec.Server
        /// Index in the Gateway's `servers`, for ids and diagnostics.
        var index: Int
        var terminatesTLS: Bool
        /// Set for TLS PASSTHROUGH and TCP servers.
        var streamMode: StreamRoutes.Mode? = nil
    }

    /// Servers of the Gateways whose selector picks this gateway (nil selector = all), by port.
    static func serversByPort(_ set: ConfigSet, labels: [String: String]) -> [(Int, [BoundServer])] {
        var byPort: [Int: [BoundServer]] = [:]
        for gateway in set.gateways {
            if let selector = gateway.spec.selector, !selector.allSatisfy({ labels[$0.key] == $0.value }) { continue }
            for (index, server) in (gateway.spec.servers ?? []).enumerated() {
                guard let proto = ServerProtocol(istio: server.port.protocol) else { continue }
                let terminates = TLSServerCompiler.terminatesTLS(proto, server.tls)
                let streamMode = StreamRouteCompiler.mode(proto, server.tls)
                guard proto.isPlainHTTP || terminates || streamMode != nil else { continue }
                byPort[Int(server.port.number), default: []].append(
                    BoundServer(gateway: gateway, server: server, index: index, terminatesTLS: terminates,
                                streamMode: streamMode))
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
                logPath = ConfigPath.resolve(path, against: bootstrap?.directory)
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
            tlsHandshakeTimeoutNanoseconds: limits?.tlsHandshakeTimeout?.nanoseconds ?? 10_000_000_000,
            maxConcurrentStreams: Int(limits?.maxConcurrentStreams ?? 100),
            dnsRefreshNanoseconds: spec?.dns?.refreshRate?.nanoseconds ?? 30_000_000_000,
            dnsResolvers: spec?.dns?.resolvers ?? [],
            jwksRootCertificates: spec?.jwksRootCerts.map { ConfigPath.resolve($0, against: bootstrap?.directory) },
            credentialsDirectory: ConfigPath.resolve(spec?.credentialsDir ?? "credentials", against: bootstrap?.directory),
            rateLimitStore: rateLimitStore(bootstrap),
            labels: spec?.labels ?? [:],
            namespace: bootstrap?.namespace ?? "istio-system",
            // Istio's admin port, on loopback unless told otherwise.
            adminAddress: spec?.admin.map { $0.address ?? "127.0.0.1" },
            adminPort: spec?.admin.map { Int($0.port ?? 15000) },
            pathNormalization: spec?.pathNormalization.flatMap { PathNormalization(rawValue: $0.rawValue) } ?? .base,
            gatewayName: bootstrap?.name ?? "",
            rootNamespace: spec?.rootNamespace ?? "istio-system",
            numTrustedProxies: Int(spec?.numTrustedProxies ?? 0),
            forwardClientCertDetails: spec?.forwardClientCertDetails.flatMap { $0 == .UNDEFINED ? nil : $0 } ?? .SANITIZE_SET,
            meshIdentity: bootstrap.flatMap(meshIdentity),
            retryBufferBytes: Int(limits?.retryBufferBytes ?? 32 * 1024),
            locality: spec?.locality ?? "")
    }

    /// `sqlite` when asked for, or by default when there is a `stateDir` to keep the file in; `redis`
    /// as written (its URL was checked at load).
    static func rateLimitStore(_ bootstrap: Resource<BootstrapSpec>?) -> RateLimitStoreSettings {
        guard let bootstrap else { return .memory }
        let store = bootstrap.spec.rateLimitStore
        if store?.type == .redis, let text = store?.url, let url = try? RedisURL.parse(text) {
            return .redis(RedisStoreSettings(
                url: url, failOpen: store?.failureMode != .deny,
                timeoutNanoseconds: store?.timeout?.nanoseconds ?? 50_000_000,
                caCertificatesPath: store?.caCertificates.map { ConfigPath.resolve($0, against: bootstrap.directory) }))
        }
        guard let stateDir = bootstrap.spec.stateDir else { return .memory }
        switch store?.type {
        case .memory?, .redis?: return .memory
        case .sqlite?, nil: return .sqlite(directory: ConfigPath.resolve(stateDir, against: bootstrap.directory))
        }
    }

    static func meshIdentity(_ bootstrap: Resource<BootstrapSpec>) -> MeshIdentity? {
        guard let identity = bootstrap.spec.identity, let chain = identity.certChain, let key = identity.privateKey,
              let root = identity.rootCert else { return nil }
        func resolve(_ path: String) -> String { ConfigPath.resolve(path, against: bootstrap.directory) }
        return MeshIdentity(certificateChainPath: resolve(chain), privateKeyPath: resolve(key), rootCertificatePath: resolve(root),
                            trustDomain: identity.trustDomain ?? "cluster.local",
                            origin: bootstrap.diagnostic("spec.identity", ""))
    }
}
