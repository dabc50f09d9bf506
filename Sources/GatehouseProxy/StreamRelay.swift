import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOPosix

/// Relays one downstream connection's bytes to an upstream endpoint and back, untouched: TLS
/// PASSTHROUGH (the ClientHello the SNI was read from goes first) and TCP servers. Back-pressure: each
/// side's reads stop while the other side cannot take more. One access-log line when it closes.
final class StreamRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let runtime: ProxyRuntime
    /// How the upstream connection speaks TLS (DestinationRule `tls`); nil: plaintext.
    private var transport: UpstreamTransport?
    /// The cluster's `tcpKeepalive`.
    private var keepalive: TCPKeepalivePolicy?
    private let loop: LoopContext
    private let route: StreamRoutes.Route?
    /// The snapshot the route came from: its destinations name clusters by index in this snapshot.
    private let snapshot: Snapshot
    private var context: ChannelHandlerContext!
    private var record = AccessLogRecord()
    private let startedAt = NIODeadline.now()
    private var upstream: Channel?
    private var pending: [ByteBuffer] = []
    private var readPending = false
    private var logged = false
    /// Counted in istio_tcp_connections_opened_total (when an upstream cluster was chosen).
    private var openCounted = false
    private var started = false
    /// The cluster's circuit breaker while this relay holds one of its `maxConnections` slots.
    private var connectionSlot: ClusterCircuitBreaker?

    private let listenerPort: Int

    init(runtime: ProxyRuntime, loop: LoopContext, listenerPort: Int, snapshot: Snapshot, route: StreamRoutes.Route?,
         serverName: String?) {
        self.runtime = runtime
        self.snapshot = snapshot
        self.loop = loop
        self.listenerPort = listenerPort
        self.route = route
        record.requestedServerName = serverName
    }

    /// The context holds this handler: dropping it here breaks the cycle, or every connection leaks.
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// A TCP listener adds this handler before the accepted socket is registered; connecting from
    /// here could finish (loopback connects often do at once) before the client side is active, and
    /// that connection would then be dropped. So the upstream is chosen once the client side is active.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        record.startTimeMillis = Timestamp.nowMillis()
        record.protocol = nil
        record.downstreamLocalAddress = context.channel.localAddress.map(SocketAddressText.describe)
        record.downstreamRemoteAddress = context.channel.remoteAddress.map(SocketAddressText.describe)
        if let refusal = authorize(snapshot, channel: context.channel) { return fail(flag: [], details: refusal) }
        guard let route else { return fail(flag: .noRouteFound, details: "filter_chain_not_found") }
        record.routeName = route.name
        guard let destination = route.forward.pick(draw: loop.random.next()),
              let cluster = snapshot.cluster(at: destination.clusterIndex),
              !cluster.endpoints.isEmpty || cluster.discovery.isDynamicForward else {
            return fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
        }
        record.upstreamCluster = cluster.name
        // Envoy's TCP proxy refuses a connection over the cluster's `maxConnections` (there is no request
        // to hold while one comes free); the slot is held for the relay's life.
        if let breaker = runtime.breakers.breaker(for: cluster, version: snapshot.version), breaker.limits.maxConnections != nil {
            guard breaker.beginConnection() else {
                runtime.clusterEvents.record(.connectionOverflow, cluster: cluster.name)
                return fail(flag: .upstreamOverflow, details: "upstream_cx_overflow")
            }
            connectionSlot = breaker
        }
        keepalive = cluster.tcpKeepalive
        loop.requests.recordConnectionOpened(cluster: cluster.name)
        openCounted = true
        if case .dynamicForward(_, let port) = cluster.discovery { return connectToNamedHost(cluster, port: port) }
        let clientIP = context.channel.remoteAddress?.ipAddress
        let hash = RequestHashKey.forConnection(cluster.loadBalancing, clientIP: clientIP)
        // Outlier detection counts HTTP responses; a TCP route's connections neither feed nor heed it.
        guard let endpointIndex = loop.pickEndpoint(of: cluster, hash: hash, version: snapshot.version) else {
            return fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
        }
        let endpoint = cluster.endpoints[endpointIndex]
        // A TCP route has no Host: the SNI is the rule's `sni`, or none.
        guard prepareTransport(cluster, host: "") else { return }
        switch cluster.discovery {
        case .staticAddresses:
            guard let target = loop.upstreamTarget(of: cluster, endpoint: endpointIndex, version: snapshot.version) else {
                return fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
            }
            connect(to: target.address, timeout: .nanoseconds(cluster.connectTimeoutNanoseconds))
        case .dns:
            runtime.dns.resolve(host: endpoint.address, port: endpoint.port, on: context.eventLoop)
                .assumeIsolated().whenComplete { [self] result in
                    guard case .success(let addresses) = result, let address = addresses.first else {
                        return fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
                    }
                    connect(to: address, timeout: .nanoseconds(cluster.connectTimeoutNanoseconds))
                }
        case .dynamicForward:
            preconditionFailure("a dynamic forward cluster has no endpoints to pick")
        case .kubernetesService:
            runtime.services.resolve(name: endpoint.address, port: endpoint.port,
                                     configured: snapshot.settings.resolverAddresses, on: context.eventLoop)
                .assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let addresses) where !addresses.isEmpty:
                        let index = loop.nextResolved(of: cluster, endpoint: endpointIndex, count: addresses.count,
                                                      version: snapshot.version, hash: hash)
                        connect(to: addresses[index], timeout: .nanoseconds(cluster.connectTimeoutNanoseconds))
                    case .success:
                        fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
                    case .failure(let error):
                        record.upstreamTransportFailureReason = "dns_resolution_failure: \(error)"
                        fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
                    }
                }
        }
    }

    /// ServiceEntry `resolution: NONE` on a TLS or TCP route: the host the client's SNI names, resolved
    /// by DNS, if the ServiceEntry's hosts cover it; otherwise the connection is closed (`NR`).
    private func connectToNamedHost(_ cluster: Cluster, port: Int) {
        let host = (record.requestedServerName ?? "").lowercased()
        guard cluster.discovery.forwards(to: host[...]) else {
            return fail(flag: .noRouteFound, details: "outbound_host_not_in_registry")
        }
        guard prepareTransport(cluster, host: host[...]) else { return }
        runtime.services.resolve(name: host, port: port, configured: snapshot.settings.resolverAddresses,
                                 on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .success(let addresses) = result, !addresses.isEmpty else {
                record.upstreamTransportFailureReason = "dns_resolution_failure"
                return fail(flag: .noHealthyUpstream, details: "no_healthy_upstream")
            }
            connect(to: addresses[Int(loop.random.next() % UInt64(addresses.count))],
                    timeout: .nanoseconds(cluster.connectTimeoutNanoseconds))
        }
    }

    /// The TLS the cluster's connection speaks, for a connection naming `host`; false (and the connection
    /// failed) when its client context is missing.
    private func prepareTransport(_ cluster: Cluster, host: Substring) -> Bool {
        guard let tls = cluster.tls else { return true }
        guard let made = loop.transport(for: tls, host: host, contexts: runtime.tlsContexts, streams: true,
                                            cluster: cluster, version: snapshot.version) else {
            record.upstreamTransportFailureReason = TLSFailureReason.missingContext
            fail(flag: .upstreamConnectionFailure, details: "upstream_connect_failure")
            return false
        }
        transport = made
        return true
    }

    /// AuthorizationPolicy on a TCP connection (Envoy's network rbac filter): only connection attributes
    /// exist, so the snapshot compiled the port's rules in TCP form. nil: allowed.
    private func authorize(_ snapshot: Snapshot, channel: Channel) -> String? {
        guard let engine = snapshot.listener(port: listenerPort)?.authorization, !engine.isEmpty else { return nil }
        let source = channel.remoteAddress?.ipAddress.flatMap { IPAddress($0) }
        let request = AuthorizationRequest(
            isHTTP: false, method: "", path: "", host: "", port: listenerPort, headers: NoHeaders(),
            sourceIP: source, remoteIP: source, destinationIP: channel.localAddress?.ipAddress.flatMap { IPAddress($0) },
            serverName: record.requestedServerName)
        let decision = engine.evaluate(request)
        record.authzPolicy = decision.logName
        RequestSecurity.count(decision, in: loop.decisions)
        return decision.allowed ? nil : decision.responseCodeDetails
    }

    private func connect(to address: SocketAddress, timeout: TimeAmount) {
        record.upstreamHost = SocketAddressText.describe(address)
        let relay = NIOLoopBound(self, eventLoop: context.eventLoop)
        UpstreamConnector.connect(on: context.eventLoop, to: address, timeout: timeout, transport: transport,
                                  keepalive: keepalive) { channel in
            try channel.pipeline.syncOperations.addHandler(UpstreamRelayHandler(downstream: relay.value))
        }
            .assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    guard let context, context.channel.isActive else { return channel.close(promise: nil) }
                    upstream = channel
                    record.upstreamLocalAddress = channel.localAddress.map(SocketAddressText.describe)
                    for bytes in pending { channel.write(bytes, promise: nil) }
                    pending.removeAll()
                    channel.flush()
                    resumeReads()
                case .failure(let error):
                    record.upstreamTransportFailureReason = (error as? UpstreamConnectError)?.transportFailureReason
                    if let cluster = record.upstreamCluster {
                        runtime.clusterEvents.recordConnectFailure(cluster: cluster,
                                                                   transportFailureReason: record.upstreamTransportFailureReason)
                    }
                    fail(flag: .upstreamConnectionFailure, details: "upstream_connect_failure")
                }
            }
    }

    private func fail(flag: ResponseFlags, details: String) {
        record.responseFlags = flag
        record.connectionTerminationDetails = details
        // Logged here: a TCP connection refused while its handler is being added never goes active,
        // so channelInactive (which logs otherwise) would not come.
        writeLog()
        context?.close(promise: nil)
    }

    // MARK: downstream → upstream

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        record.bytesReceived += bytes.readableBytes
        guard let upstream else { return pending.append(bytes) }
        upstream.writeAndFlush(bytes, promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        // Nothing more is read until the upstream is there and can take it.
        if let upstream, upstream.isWritable { context.read() } else { readPending = true }
    }

    func resumeReads() {
        guard readPending else { return }
        readPending = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        writeLog()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: upstream → downstream (called by the upstream handler)

    /// Returns whether the client can take more without buffering.
    func fromUpstream(_ bytes: ByteBuffer) -> Bool {
        record.bytesSent += bytes.readableBytes
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        return context.channel.isWritable
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { (try? upstream?.pipeline.syncOperations.handler(type: UpstreamRelayHandler.self))?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func upstreamClosed() {
        if record.connectionTerminationDetails == nil { record.connectionTerminationDetails = "upstream_closed" }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    private func writeLog() {
        guard !logged else { return }
        logged = true
        connectionSlot?.endConnection()
        connectionSlot = nil
        record.durationMillis = (NIODeadline.now() - startedAt).nanoseconds / 1_000_000
        // Refused before an upstream was chosen: opened and closed at once, under the same flags.
        if !openCounted { loop.requests.recordConnectionOpened(cluster: nil, flags: record.responseFlags) }
        runtime.log(&record, on: loop, connection: true)
    }
}

/// The upstream end of a relay.
final class UpstreamRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Weak: the client side may be gone (and its handler freed) before this connection's close arrives.
    private weak var downstream: StreamRelayHandler?
    private var context: ChannelHandlerContext?
    private var paused = false
    private var readPending = false

    init(downstream: StreamRelayHandler) { self.downstream = downstream }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let downstream else { return context.close(promise: nil) }
        if !downstream.fromUpstream(unwrapInboundIn(data)) { paused = true }
    }

    func read(context: ChannelHandlerContext) {
        if paused { readPending = true } else { context.read() }
    }

    func resumeReads() {
        paused = false
        guard readPending else { return }
        readPending = false
        context?.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { downstream?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        downstream?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// A TCP connection has no headers.
struct NoHeaders: HeaderValues {
    func values(_ name: String) -> [String] { [] }
}
