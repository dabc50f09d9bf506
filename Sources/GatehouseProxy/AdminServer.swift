import GatehouseIdentity
import GatehouseHTTP1
import GatehouseTelemetry
import GatehouseUpstream
import GatehouseSnapshot
import NIOCore
import NIOPosix

/// The admin listener (Bootstrap `admin`, Envoy's port 15000 by Istio convention): `GET /ready`,
/// `/stats/prometheus`, `/config_dump` and `/clusters`. It serves operators and probes on a private address, never client traffic,
/// so it is small: one request at a time per connection, answers built whole.
public final class AdminServer: Sendable {
    private let runtime: ProxyRuntime
    private let group: EventLoopGroup

    public init(runtime: ProxyRuntime, group: EventLoopGroup) {
        self.runtime = runtime
        self.group = group
    }

    /// Binds `host:port`; returns the bound channel (closed on shutdown with the event loop group).
    public func start(host: String, port: Int) async throws -> Channel {
        let runtime = self.runtime
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(runtime: runtime))
                }
            }
        do {
            return try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw GatewayServerError(message: "cannot listen on \(host):\(port) (admin): \(error)")
        }
    }
}

/// One admin connection: decodes requests with the gateway's own HTTP/1.1 decoder and answers each.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let runtime: ProxyRuntime
    private var decoder = HTTP1RequestDecoder(limits: HTTP1Limits(maxHeadBytes: 16 * 1024, maxHeaderCount: 64))
    private var inbound = ByteBuffer()
    private var head: RequestHead?

    init(runtime: ProxyRuntime) { self.runtime = runtime }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        do {
            while let event = try decoder.next(&inbound) {
                switch event {
                case .head(let requestHead): head = requestHead
                case .body: break
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    respond(context, to: request)
                }
            }
        } catch {
            write(context, AdminResponse(status: 400, body: "bad request\n"), keepAlive: false)
        }
    }

    private func respond(_ context: ChannelHandlerContext, to request: RequestHead) {
        let parts = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "")
        let query = parts.count > 1 ? String(parts[1]) : ""
        guard AdminRoutes.needsLoad(path) else {
            let response = AdminRoutes.answer(method: request.method, path: path, query: query, runtime: runtime)
            return write(context, response, keepAlive: request.keepAlive, headOnly: request.isHEAD)
        }
        // Requests in flight are counted by each event loop: asked for first, then the answer is written.
        let version = runtime.store.snapshot.version
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        runtime.clusterLoad(version: version, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            let load = (try? result.get()) ?? ClusterLoad()
            let response = AdminRoutes.answer(method: request.method, path: path, query: query, runtime: handler.runtime,
                                              load: load)
            handler.write(context, response, keepAlive: request.keepAlive, headOnly: request.isHEAD)
        }
    }

    private func write(_ context: ChannelHandlerContext, _ response: AdminResponse, keepAlive: Bool,
                       headOnly: Bool = false) {
        let body = response.body
        var out = context.channel.allocator.buffer(capacity: body.count + 128)
        HTTP1Encoder.writeStatusLine(status: response.status, into: &out)
        HTTP1Encoder.writeField("content-type", response.contentType, into: &out)
        HTTP1Encoder.writeField("content-length", String(body.count), into: &out)
        if !keepAlive { HTTP1Encoder.writeField("connection", "close", into: &out) }
        out.writeStaticString("\r\n")
        if !headOnly { out.writeBytes(body) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

struct AdminResponse {
    var status: Int
    var body: [UInt8]
    var contentType = "text/plain; charset=utf-8"

    init(status: Int, body: String, contentType: String = "text/plain; charset=utf-8") {
        self.init(status: status, bytes: Array(body.utf8), contentType: contentType)
    }

    init(status: Int, bytes: [UInt8], contentType: String) {
        self.status = status
        body = bytes
        self.contentType = contentType
    }

    static func json(_ bytes: [UInt8]) -> AdminResponse {
        AdminResponse(status: 200, bytes: bytes, contentType: "application/json")
    }
}

/// What each admin path answers.
enum AdminRoutes {
    static let paths = ["/ready", "/stats/prometheus", "/config_dump", "/clusters", "/ratelimit_counters"]

    /// The paths whose answer shows requests in flight, which the event loops are asked for first.
    static func needsLoad(_ path: String) -> Bool { path == "/clusters" || path == "/stats/prometheus" }

    /// `envoy_cluster_*` for every cluster of the live snapshot.
    static func clusterStats(_ runtime: ProxyRuntime, load: ClusterLoad) -> String {
        let clusters = runtime.store.snapshot.clusters.values.sorted { $0.name < $1.name }
        var ejected: [String: Int] = [:]
        var active: [String: Int] = [:]
        var pending: [String: Int] = [:]
        for cluster in clusters {
            if let flags = runtime.outliers.ejections(of: cluster) { ejected[cluster.name] = flags.filter { $0 }.count }
            active[cluster.name] = load.active[cluster.index]?.reduce(0, +) ?? 0
            pending[cluster.name] = load.pending[cluster.index] ?? 0
        }
        return runtime.clusterEvents.prometheusText(clusters: clusters.map(\.name), ejectionsActive: ejected,
                                                    requestsActive: active, requestsPending: pending)
    }

    /// Envoy's `/clusters` circuit-breaker lines: each limit (Istio's 2³²-1 when unset), and the
    /// connections open when `maxConnections` counts them.
    static func circuitBreakerStats(_ cluster: Cluster, runtime: ProxyRuntime) -> [(String, Int)] {
        let limits = cluster.circuitBreakers ?? CircuitBreakerLimits()
        let unlimited = Int(UInt32.max)
        var out = [("default_priority::max_connections", limits.maxConnections ?? unlimited),
                   ("default_priority::max_pending_requests", limits.maxPendingRequests ?? unlimited),
                   ("default_priority::max_requests", limits.maxRequests ?? unlimited),
                   ("default_priority::max_retries", limits.maxRetries ?? unlimited)]
        if limits.maxConnections != nil,
           let breaker = runtime.breakers.breaker(for: cluster, version: runtime.store.snapshot.version) {
            out.append(("cx_active", breaker.connectionsOpen))
        }
        return out
    }

    static func answer(method: String, path: String, query: String, runtime: ProxyRuntime,
                       load: ClusterLoad = ClusterLoad()) -> AdminResponse {
        guard method == "GET" || method == "HEAD" else { return AdminResponse(status: 405, body: "method not allowed\n") }
        switch path {
        case "/ready":
            // Envoy's answer: the server state, 200 only when LIVE.
            return runtime.isDraining ? AdminResponse(status: 503, body: "DRAINING\n") : AdminResponse(status: 200, body: "LIVE\n")
        case "/stats/prometheus":
            return AdminResponse(status: 200,
                                 body: runtime.metrics.prometheusText(
                                     activeConnections: runtime.openConnections, draining: runtime.isDraining,
                                     accessLog: runtime.accessLog.map { ($0.writtenLines, $0.droppedLines) },
                                     istio: IstioLabels.of(runtime.store.snapshot)) + runtime.jwks.prometheusText()
                                     + MeshIdentityStatus.prometheusText(runtime.store.snapshot.settings.meshIdentity)
                                     + (runtime.redisHealth?.prometheusText() ?? "")
                                     + clusterStats(runtime, load: load),
                                 contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/config_dump":
            return .json(SnapshotDump.configDump(runtime.store.snapshot))
        case "/clusters":
            let wantsJSON = query.split(separator: "&").contains("format=json")
            let ejected = { (cluster: Cluster) in runtime.outliers.ejections(of: cluster) }
            let stats = { (cluster: Cluster) in
                [("rq_pending_active", load.pending[cluster.index] ?? 0)] + circuitBreakerStats(cluster, runtime: runtime)
                    + ClusterEvents.Event.allCases.map { ($0.statName, runtime.clusterEvents.count($0, cluster: cluster.name)) }
            }
            let active = { (cluster: Cluster) in load.active[cluster.index] }
            return wantsJSON ? .json(SnapshotDump.clustersJSON(runtime.store.snapshot, ejected: ejected, stats: stats, active: active))
                : AdminResponse(status: 200, body: SnapshotDump.clustersText(runtime.store.snapshot, ejected: ejected,
                                                                             stats: stats, active: active))
        case "/ratelimit_counters":
            return AdminRateLimitCounters.answer(query: query, runtime: runtime)
        default:
            return AdminResponse(status: 404, body: "not found: try \(paths.joined(separator: ", "))\n")
        }
    }
}

/// The gateway and its clusters as Istio's metrics name them.
enum IstioLabels {
    static func of(_ snapshot: Snapshot) -> (source: IstioMetrics.Source, destination: (String?) -> IstioMetrics.Destination) {
        let settings = snapshot.settings
        let source = IstioMetrics.Source(workload: settings.gatewayName.isEmpty ? "unknown" : settings.gatewayName,
                                         namespace: settings.namespace,
                                         // The mesh identity's SPIFFE id, as Istio's gateway reports its own.
                                         principal: settings.meshIdentity.flatMap { try? MeshIdentityStatus.read($0).spiffeID } ?? "unknown",
                                         labels: settings.labels)
        return (source, { name in destination(name, in: snapshot) })
    }

    /// A cluster's service: its host, the host's first label for a Kubernetes service name, the
    /// ServiceEntry's namespace. A cluster a reload removed is read from its name
    /// (`outbound|PORT|SUBSET|HOST`).
    static func destination(_ name: String?, in snapshot: Snapshot) -> IstioMetrics.Destination {
        guard let name else { return .unknown }
        let host: String
        var namespace = "unknown"
        if let cluster = snapshot.clusters[name] {
            host = cluster.host
            if !cluster.serviceNamespace.isEmpty { namespace = cluster.serviceNamespace }
        } else {
            host = name.split(separator: "|", omittingEmptySubsequences: false).last.map(String.init) ?? name
        }
        let labels = host.split(separator: ".")
        let isKubernetes = labels.count >= 3 && labels[2] == "svc"
        if isKubernetes, namespace == "unknown" { namespace = String(labels[1]) }
        return IstioMetrics.Destination(service: host, serviceName: isKubernetes ? String(labels[0]) : host,
                                        serviceNamespace: namespace)
    }
}
