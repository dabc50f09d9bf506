import GatehouseHTTP1
import GatehouseIdentity
import GatehouseRateLimit
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import GatehouseUpstream
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// State of one event loop, touched only from that loop.
final class LoopContext: @unchecked Sendable {
    let eventLoop: EventLoop
    let pool: ConnectionPool
    let http2Pool: HTTP2UpstreamPool
    /// Per-cluster state (round robin, targets) for the live snapshot, by cluster index.
    private var clusterTable = ClusterLoopTable<UpstreamTarget>()
    private var poolIDs: [String: Int] = [:]
    /// Pool-key ids of (TLS material generation, SNI) pairs; see `transport(for:host:contexts:)`.
    private var transportIDs: [TransportID: Int] = [:]
    private var nextTransportID = 0
    /// The last transport made per cluster index (see `transport(for:host:contexts:)`).
    private var transportCache: [Int: CachedTransport] = [:]
    var random = FastRandom()
    /// JWTs this loop verified recently (see `VerifiedTokenCache`).
    let tokenCache = VerifiedTokenCache()
    /// This loop's policy and JWT outcome counts (read by the metrics at scrape time).
    let decisions: DecisionCounters
    /// This loop's Istio request and TCP metrics (read at scrape time).
    let requests: RequestMetrics
    /// The gateway's shared counters, for the rare events a request meets (fields dropped, limits hit).
    let metrics: GatewayMetrics
    /// Access-log lines of this loop, handed to the writer in chunks (see `ProxyRuntime.log`).
    var logBuffer: [UInt8] = []
    /// RateLimitPolicy counters: the gateway's store, and this loop's lock-free way to them.
    let counterStore: CounterStore
    let rateLimiter = LoopRateLimiter()
    /// The `redis` store's connection on this loop, when the Bootstrap picked that store.
    let redisStore: RedisRateLimitStore?
    var redisHealth: RedisHealth? { redisStore?.health }

    init(eventLoop: EventLoop, decisions: DecisionCounters = DecisionCounters(), requests: RequestMetrics = RequestMetrics(),
         metrics: GatewayMetrics = GatewayMetrics(), counterStore: CounterStore = CounterStore(),
         redisStore: RedisRateLimitStore? = nil) {
        self.metrics = metrics
        self.counterStore = counterStore
        self.redisStore = redisStore
        self.eventLoop = eventLoop
        self.decisions = decisions
        self.requests = requests
        pool = ConnectionPool(eventLoop: eventLoop)
        http2Pool = HTTP2UpstreamPool(eventLoop: eventLoop)
    }

    /// The endpoint of `cluster` the next request goes to, by the cluster's `loadBalancing` over this
    /// loop's state; `hash` is the request's consistent-hash key (nil: none, or not that policy). With
    /// `outliers`, ejected endpoints are passed over, unless the cluster panics (`minHealthPercent`);
    /// nil when every endpoint is ejected.
    /// `avoidingPriorities`: locality priorities a retry passes over (`retryRemoteLocalities`).
    func pickEndpoint(of cluster: Cluster, hash: UInt64?, version: Int, outliers: OutlierTracker? = nil,
                      avoidingPriorities: [Int] = []) -> Int? {
        let count = cluster.endpoints.count
        guard count > 0 else { return nil }
        guard let outliers else {
            // Locality first (distribute's weights; failover never leaves priority 0 without ejections).
            if let plan = cluster.localityPlan,
               let eligible = plan.eligible(draw: random.next(), isEjected: { _ in false }, avoiding: avoidingPriorities) {
                return pick(cluster, hash: hash, version: version, skipping: { !eligible.contains($0) })
            }
            return pick(cluster, hash: hash, version: version, skipping: { _ in false })
        }
        return outliers.withDetector(now: OutlierTracker.now) { detector in
            // The priority (or locality) drawn by load, which ejections shift; a panicking cluster, or one
            // with no healthy endpoint in any locality, uses them all as below.
            if let plan = cluster.localityPlan, !detector.isPanicking,
               let eligible = plan.eligible(draw: random.next(), isEjected: { detector.isEjected($0) }, avoiding: avoidingPriorities) {
                return pick(cluster, hash: hash, version: version, skipping: { !eligible.contains($0) || detector.isEjected($0) })
            }
            if detector.ejectedCount == 0 || detector.isPanicking {
                return pick(cluster, hash: hash, version: version, skipping: { _ in false })
            }
            if detector.ejectedCount >= count { return nil }
            return pick(cluster, hash: hash, version: version, skipping: { detector.isEjected($0) })
        }
    }

    /// `pickEndpoint`'s choice over this loop's state, passing over the endpoints `skipping` names.
    private func pick(_ cluster: Cluster, hash: UInt64?, version: Int, skipping: (Int) -> Bool) -> Int {
        let count = cluster.endpoints.count
        guard count > 1 else { return 0 }
        clusterTable.prepare(version: version, cluster: cluster.index, endpoints: count)
        return EndpointChoice.choose(
            cluster.loadBalancing, count: count, hash: hash,
            active: { clusterTable.active(cluster: cluster.index) },
            nextInTurn: {
                clusterTable.nextEndpoint(cluster: cluster.index, count: count, start: Int(random.next() % UInt64(count)))
            },
            random: { random.next() }, skip: skipping)
    }

    /// A request to `endpoint` of `cluster` is in flight (LEAST_REQUEST counts these per loop).
    func requestBegan(cluster: Cluster, endpoint: Int, version: Int) {
        clusterTable.prepare(version: version, cluster: cluster.index, endpoints: cluster.endpoints.count)
        clusterTable.began(cluster: cluster.index, endpoint: endpoint)
    }

    func requestEnded(cluster: Cluster, endpoint: Int, version: Int) {
        clusterTable.ended(version: version, cluster: cluster.index, endpoint: endpoint)
    }

    /// A request of `cluster` waits for a new upstream connection (Envoy's pending request).
    func pendingBegan(cluster: Cluster, version: Int) {
        clusterTable.prepare(version: version, cluster: cluster.index, endpoints: cluster.endpoints.count)
        clusterTable.pendingBegan(cluster: cluster.index)
    }

    func pendingEnded(cluster: Cluster, version: Int) {
        clusterTable.pendingEnded(version: version, cluster: cluster.index)
    }

    /// This loop's requests in flight and waiting, by cluster of snapshot `version`. On the loop only.
    func load(version: Int) -> ClusterLoad { clusterTable.load(version: version) }

    /// Which of the `count` addresses endpoint `endpoint`'s name resolved to comes next: by the
    /// request's hash for a consistent-hash cluster, else in turn.
    func nextResolved(of cluster: Cluster, endpoint: Int, count: Int, version: Int, hash: UInt64? = nil) -> Int {
        if let hash, count > 0 { return Int(hash % UInt64(count)) }
        clusterTable.prepare(version: version, cluster: cluster.index, endpoints: cluster.endpoints.count)
        return clusterTable.nextResolved(cluster: cluster.index, endpoint: endpoint, count: count,
                                         start: Int(random.next() % UInt64(max(1, count))))
    }

    /// Where a request to endpoint `endpoint` (an IP) of `cluster` goes, built once per snapshot version
    /// so the hot path neither parses the IP nor formats the address again.
    func upstreamTarget(of cluster: Cluster, endpoint: Int, version: Int) -> UpstreamTarget? {
        clusterTable.prepare(version: version, cluster: cluster.index, endpoints: cluster.endpoints.count)
        return clusterTable.target(cluster: cluster.index, endpoint: endpoint) {
            let spec = cluster.endpoints[endpoint]
            guard let address = try? SocketAddress(ipAddress: spec.address, port: spec.port) else { return nil }
            return UpstreamTarget(pool: poolID(cluster), address: address)
        }
    }

    /// A target for an address a name of `cluster` resolved to.
    func upstreamTarget(of cluster: Cluster, resolved address: SocketAddress) -> UpstreamTarget {
        UpstreamTarget(pool: poolID(cluster), address: address)
    }

    /// How a new connection of a cluster with `tls` speaks TLS, for a request naming `host` (the SNI and
    /// the name checked when the rule sets neither `sni` nor `subjectAltNames`, as Istio's automatic SNI
    /// and SAN validation do). nil when the cluster's context is missing, which fails the request.
    ///
    /// Kept per cluster while the snapshot, the request's host and the TLS material stay the same, so
    /// a request to a TLS upstream does not take the material's lock, copy the host and look up its
    /// pool-key id again (measured at 4 % of a request to a mutual-TLS origin).
    func transport(for tls: UpstreamTLS, host: Substring, contexts: TLSContextStore, streams: Bool = false,
                   cluster: Cluster, version: Int) -> UpstreamTransport? {
        let materialVersion = contexts.upstreamVersion
        if let cached = transportCache[cluster.index], cached.snapshotVersion == version, cached.streams == streams,
           cached.materialVersion == materialVersion, cached.host == host {
            return cached.transport
        }
        let made = transport(for: tls, host: host, contexts: contexts, streams: streams)
        if let made {
            if transportCache.count >= 4096 { transportCache.removeAll(keepingCapacity: true) }
            transportCache[cluster.index] = CachedTransport(snapshotVersion: version, streams: streams,
                                                            materialVersion: materialVersion, host: String(host),
                                                            transport: made)
        }
        return made
    }

    private func transport(for tls: UpstreamTLS, host: Substring, contexts: TLSContextStore, streams: Bool) -> UpstreamTransport? {
        guard let material = contexts.upstreamMaterial(for: streams ? tls.forStreams : tls) else { return nil }
        let name: String? = tls.sni ?? (host.isEmpty ? nil : String(host))
        let names: UpstreamPeerPolicy.Names
        if !tls.subjectAltNames.isEmpty {
            names = .oneOf(tls.subjectAltNames)
        } else if tls.mode == .istioMutual {
            names = .any
        } else if let name {
            names = .host(name)
        } else {
            names = .any
        }
        // SNI carries names only (RFC 6066); an IP host is still checked against the IP SANs.
        let serverName = name.flatMap { name in
            name.utf8.contains(UInt8(ascii: ":")) || name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }) ? nil : name
        }
        let id = TransportID(generation: material.generation, serverName: serverName)
        let key: Int
        if let known = transportIDs[id] {
            key = known
        } else {
            // Hosts come from requests, so the table is bounded; ids are never reused, so a forgotten
            // pair's pooled connections can only go unused, never serve another SNI.
            if transportIDs.count >= 4096 { transportIDs.removeAll(keepingCapacity: true) }
            nextTransportID += 1
            key = nextTransportID
            transportIDs[id] = key
        }
        return UpstreamTransport(material: material, serverName: serverName, names: names, key: key)
    }

    /// Pools outlive snapshots (a reload keeps warm connections), so they are keyed by a per-loop id of
    /// the cluster's name rather than its index; the name is hashed once per cluster and snapshot.
    private func poolID(_ cluster: Cluster) -> Int {
        if let id = poolIDs[cluster.name] { return id }
        let id = poolIDs.count
        poolIDs[cluster.name] = id
        return id
    }
}

struct CachedTransport {
    var snapshotVersion: Int
    var streams: Bool
    var materialVersion: Int
    var host: String
    var transport: UpstreamTransport
}

struct TransportID: Hashable {
    var generation: Int
    var serverName: String?
}

/// Which pooled connections may serve a request: same cluster (its name: TLS and protocol settings come
/// with it), same endpoint address. Hashes two small values, no strings.
struct PoolKey: Hashable {
    var cluster: Int
    var address: SocketAddress
    /// 0 for plaintext; else `LoopContext.transport`'s id of the TLS material generation and SNI.
    var transport = 0
}

/// A resolved endpoint of a cluster: the socket address, its text for logs, and its pool key.
struct UpstreamTarget {
    let address: SocketAddress
    let text: String
    let poolKey: PoolKey

    init(pool cluster: Int, address: SocketAddress) {
        self.address = address
        text = SocketAddressText.describe(address)
        poolKey = PoolKey(cluster: cluster, address: address)
    }
}

/// Everything the data plane shares across connections: the snapshot store, the log writer, the
/// per-loop contexts and the set of open downstream connections (for drain).
public final class ProxyRuntime: Sendable {
    public let store: SnapshotStore
    let accessLog: AccessLogWriter?
    let dns: DNSCache
    /// Kubernetes service names, resolved with their TTLs.
    let services = ServiceResolver()
    private let loops: [ObjectIdentifier: LoopContext]
    let connections = ConnectionRegistry()
    /// What an upstream may send in a response head: Envoy's defaults (60 KiB, 100 fields).
    let upstreamLimits = HTTP1Limits(maxHeadBytes: 60 * 1024, maxHeaderCount: 100)
    private let drainingFlag = Atomic<Bool>(false)

    /// Server-side TLS contexts of the live snapshot's HTTPS servers.
    public let tlsContexts: TLSContextStore
    public let metrics = GatewayMetrics()
    /// Keys of the RequestAuthentication `jwksUri`s, fetched off the event loops (see `JWKSCache`).
    public let jwks = JWKSCache()
    /// The clusters' outlier detectors and circuit breakers, shared by every loop.
    let outliers = OutlierRegistry()
    let breakers = CircuitBreakerRegistry()
    /// Per-cluster failure counts (`envoy_cluster_*`).
    let clusterEvents = ClusterEvents()
    /// RateLimitPolicy counters, shared by every loop and kept across reloads.
    public let counterStore = CounterStore()
    /// The `redis` rate-limit store's health (nil with another store): its metrics and log lines.
    let redisHealth: RedisHealth?

    /// `storeLog` hears when the `redis` rate-limit store stops and starts answering. Throws when the
    /// store's TLS settings cannot make a TLS context.
    public init(store: SnapshotStore, accessLog: AccessLogWriter?, group: MultiThreadedEventLoopGroup,
                threadPool: NIOThreadPool, tlsContexts: TLSContextStore = TLSContextStore(),
                storeLog: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.store = store
        self.tlsContexts = tlsContexts
        self.accessLog = accessLog
        // The store is the first snapshot's: a reload that changes it takes effect at the next restart.
        var redis: (settings: RedisStoreSettings, tls: NIOSSLContext?, health: RedisHealth)?
        if case .redis(let settings) = store.snapshot.settings.rateLimitStore {
            redis = (settings, try settings.makeTLSContext(), RedisHealth(failOpen: settings.failOpen, announce: storeLog))
        }
        redisHealth = redis?.health
        var loops: [ObjectIdentifier: LoopContext] = [:]
        for loop in group.makeIterator() {
            let redisStore = redis.map { redis in
                RedisRateLimitStore(connection: RedisConnection(eventLoop: loop, url: redis.settings.url,
                                                                timeout: .nanoseconds(redis.settings.timeoutNanoseconds),
                                                                tls: redis.tls, health: redis.health),
                                    health: redis.health)
            }
            loops[ObjectIdentifier(loop)] = LoopContext(eventLoop: loop, decisions: metrics.makeDecisionCounters(),
                                                        requests: metrics.makeRequestMetrics(), metrics: metrics,
                                                        counterStore: counterStore, redisStore: redisStore)
        }
        self.loops = loops
        dns = DNSCache(threadPool: threadPool,
                       refreshInterval: .nanoseconds(store.snapshot.settings.dnsRefreshNanoseconds))
        startLogFlushing()
    }

    /// Every loop's requests in flight and waiting for a connection, added up, for snapshot `version`:
    /// each loop counts its own, and is asked on its own thread.
    func clusterLoad(version: Int, on eventLoop: EventLoop) -> EventLoopFuture<ClusterLoad> {
        let counts = loops.values.map { context in context.eventLoop.submit { context.load(version: version) } }
        return EventLoopFuture.whenAllSucceed(counts, on: eventLoop).map { loads in
            loads.reduce(into: ClusterLoad()) { $0.add($1) }
        }
    }

    func loopContext(for eventLoop: EventLoop) -> LoopContext {
        if let context = loops[ObjectIdentifier(eventLoop)] { return context }
        preconditionFailure("channel on an event loop outside the gateway's group")
    }

    /// Forgets the rate-limit keys back to their full allowance (see `CounterStore.sweep`).
    public func sweepRateLimitCounters() {
        counterStore.sweep(now: RequestRateLimit.now())
    }

    public var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }

    public var openConnections: Int { connections.count }

    func record(_ event: ProtectionEvent) { metrics.record(event) }

    func beginDrain() { drainingFlag.store(true, ordering: .relaxed) }

    /// Counts the request (or relayed `connection`) in the Istio metrics, then encodes its line into
    /// the loop's buffer; the buffer goes to the writer when it holds 32 KiB, and
    /// every 50 ms by a timer on each loop (`startLogFlushing`), so a line waits at most that long.
    /// `inout` only so the record is encoded in place: passing a record held by a class by value copies
    /// (retains) each of its strings.
    func log(_ record: inout AccessLogRecord, on loop: LoopContext, connection: Bool = false) {
        if connection { loop.requests.recordConnectionClosed(&record) } else { loop.requests.recordRequest(&record) }
        guard let accessLog else { return }
        record.encode(into: &loop.logBuffer)
        if loop.logBuffer.count >= Self.logChunkBytes { flushLog(loop, to: accessLog) }
    }

    static let logChunkBytes = 32 << 10

    private func flushLog(_ loop: LoopContext, to accessLog: AccessLogWriter) {
        guard !loop.logBuffer.isEmpty else { return }
        accessLog.write(loop.logBuffer)
        loop.logBuffer.removeAll(keepingCapacity: true)
    }

    func startLogFlushing() {
        guard let accessLog else { return }
        for loop in loops.values {
            loop.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { _ in
                self.flushLog(loop, to: accessLog)
            }
        }
    }

    /// Hands every loop's pending lines to the writer (at shutdown, before the writer closes).
    public func flushLogs() async {
        guard let accessLog else { return }
        for loop in loops.values {
            try? await loop.eventLoop.submit { self.flushLog(loop, to: accessLog) }.get()
        }
    }
}

/// Open downstream connections, so drain can tell each to finish and wait, without polling, for the
/// last to go.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        /// Drains waiting for the last connection to close.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waits cancelled before they registered (the cancellation handler can run first).
        var cancelled: Set<Int> = []
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func add(_ channel: Channel) -> Int {
        state.withLock { $0.channels[ObjectIdentifier(channel)] = channel; return $0.channels.count }
    }

    func remove(_ channel: Channel) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.channels.removeValue(forKey: ObjectIdentifier(channel))
            guard state.channels.isEmpty, !state.waiters.isEmpty else { return [] }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    var count: Int { state.withLock { $0.channels.count } }
    var all: [Channel] { state.withLock { Array($0.channels.values) } }

    /// Returns once no connection is open, or when the task is cancelled.
    func waitUntilEmpty() async {
        let id = state.withLock { state -> Int in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.channels.isEmpty || state.cancelled.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return waiter
            }
            waiter?.resume()
        }
    }
}
