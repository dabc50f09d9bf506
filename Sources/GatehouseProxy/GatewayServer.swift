import GatehouseHTTP1
import GatehouseIdentity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Binds a listener for every port of the snapshot and serves HTTP/1.1 on it, in clear or over TLS;
/// drains on request.
public final class GatewayServer: Sendable {
    public let runtime: ProxyRuntime
    private let group: MultiThreadedEventLoopGroup
    /// The bound listeners by port, with the address each is bound to.
    private let servers = NIOLockedValueBox<[Int: BoundListener]>([:])

    struct BoundListener {
        var address: String
        var channel: Channel
    }

    public init(runtime: ProxyRuntime, group: MultiThreadedEventLoopGroup) {
        self.runtime = runtime
        self.group = group
    }

    /// Binds every listener of the current snapshot. Throws (naming the port) if one cannot be bound.
    public func start() async throws {
        for listener in runtime.store.snapshot.listeners {
            let channel = try await bind(listener, accepting: true)
            servers.withLockedValue { $0[listener.port] = BoundListener(address: listener.bindAddress, channel: channel) }
        }
    }

    /// The listener sockets a reload to `next` opens and closes. Made by `prepare(for:)` before the
    /// snapshot swap, applied by `commit(_:)` after it.
    public struct ListenerChange: Sendable {
        /// Bound but not accepting yet, so no connection arrives before the snapshot that serves it.
        var added: [(listener: Listener, channel: Channel)] = []
        var removed: [Int] = []
        /// Ports whose bind address changed: closed, then bound again, at commit (with the address
        /// they had, to fall back on).
        var rebound: [(listener: Listener, previousAddress: String)] = []

        public var isEmpty: Bool { added.isEmpty && removed.isEmpty && rebound.isEmpty }

        public var summary: String {
            let parts = [added.isEmpty ? nil : "added " + added.map { "\($0.listener.bindAddress):\($0.listener.port)" }.joined(separator: ", "),
                         removed.isEmpty ? nil : "removed " + removed.map(String.init).joined(separator: ", "),
                         rebound.isEmpty ? nil : "moved " + rebound.map { "\($0.listener.bindAddress):\($0.listener.port)" }.joined(separator: ", ")]
            return parts.compactMap { $0 }.joined(separator: "; ")
        }
    }

    /// Binds the ports `next` adds. Throws, naming the port, when one cannot be bound (in use, say),
    /// after closing the ones it did bind: the reload is then rejected and nothing changed.
    public func prepare(for next: Snapshot) async throws -> ListenerChange {
        let current = servers.withLockedValue { $0 }
        var change = ListenerChange()
        let wanted = Set(next.listeners.map(\.port))
        change.removed = current.keys.filter { !wanted.contains($0) }.sorted()
        for listener in next.listeners {
            if let bound = current[listener.port] {
                if bound.address != listener.bindAddress { change.rebound.append((listener, bound.address)) }
                continue
            }
            do {
                change.added.append((listener, try await bind(listener, accepting: false)))
            } catch {
                for (_, channel) in change.added { try? await channel.close() }
                throw error
            }
        }
        return change
    }

    /// After the new snapshot went live: the added listeners start accepting, removed ones stop and
    /// their connections are told to finish (`Connection: close` / GOAWAY after the request in
    /// flight). Returns what could not be done (a moved listener whose new address cannot be bound).
    public func commit(_ change: ListenerChange) async -> [String] {
        var problems: [String] = []
        for (listener, channel) in change.added {
            servers.withLockedValue { $0[listener.port] = BoundListener(address: listener.bindAddress, channel: channel) }
            try? await channel.setOption(.autoRead, value: true).get()
        }
        for port in change.removed { await close(port: port) }
        for (listener, previousAddress) in change.rebound {
            await close(port: listener.port)
            var fallback = listener
            fallback.bindAddress = previousAddress
            for (attempt, isFallback) in [(listener, false), (fallback, true)] {
                do {
                    let channel = try await bind(attempt, accepting: true)
                    servers.withLockedValue { $0[attempt.port] = BoundListener(address: attempt.bindAddress, channel: channel) }
                    if isFallback { problems.append("kept \(previousAddress):\(listener.port): the new address could not be bound") }
                    break
                } catch {
                    problems.append("\(error)")
                }
            }
        }
        return problems
    }

    /// Stops accepting on `port` and asks its open connections to finish.
    private func close(port: Int) async {
        guard let bound = servers.withLockedValue({ $0.removeValue(forKey: port) }) else { return }
        try? await bound.channel.close()
        for channel in runtime.connections.all where channel.localAddress?.port == port {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
    }

    private func bind(_ listener: Listener, accepting: Bool) async throws -> Channel {
        let runtime = self.runtime
        let port = listener.port
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.autoRead, value: accepting)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, runtime: runtime, port: port)
                }
            }
        do {
            return try await bootstrap.bind(host: listener.bindAddress, port: port).get()
        } catch {
            throw GatewayServerError(message: "cannot listen on \(listener.bindAddress):\(port): \(error)")
        }
    }

    private static func configure(_ channel: Channel, runtime: ProxyRuntime, port: Int) throws {
        let settings = runtime.store.snapshot.settings
        // Tracked until the channel is closed, however it closes: a client that resets before the pipeline
        // is set up (so no handler ever sees channelInactive) must not hold up drain.
        let open = runtime.connections.add(channel)
        channel.closeFuture.whenComplete { _ in runtime.connections.remove(channel) }
        if open > settings.maxConnections || runtime.isDraining {
            // Over the connection cap (or shutting down): refuse before reading anything.
            if !runtime.isDraining { runtime.record(.connectionLimit) }
            channel.close(promise: nil)
            return
        }
        let limits = HTTP1Limits(maxHeadBytes: settings.maxRequestHeaderBytes, maxHeaderCount: settings.maxRequestHeaders)
        let loop = runtime.loopContext(for: channel.eventLoop)
        let headersTimeout = TimeAmount.nanoseconds(settings.requestHeadersTimeoutNanoseconds)
        let snapshot = runtime.store.snapshot
        if let stream = snapshot.listener(port: port)?.stream {
            return try configureRelay(channel, stream: stream, snapshot: snapshot, runtime: runtime, loop: loop,
                                      port: port, timeout: .nanoseconds(settings.tlsHandshakeTimeoutNanoseconds))
        }
        guard runtime.store.snapshot.listener(port: port)?.tls != nil else {
            // One handler per connection: it decodes and encodes HTTP/1.1 itself, on the socket's bytes.
            try channel.pipeline.syncOperations.addHandler(
                DownstreamHandler(runtime: runtime, loop: loop, listenerPort: port, limits: limits,
                                  headersTimeout: headersTimeout))
            return
        }
        // TLS: the ClientHello's SNI picks the server (and so the certificate and routes) before the
        // handshake; a client that does not finish it in time is cut off.
        let handshakeTimeout = channel.eventLoop.assumeIsolated().scheduleTask(
            in: .nanoseconds(settings.tlsHandshakeTimeoutNanoseconds)) {
                // A connection refused earlier (not TLS, say) is already closed: not a timeout.
                if channel.isActive { runtime.record(.tlsHandshakeTimeout) }
                channel.close(promise: nil)
            }
        let sni = ByteToMessageHandler(SNIHandler { result in
            let name: String? = if case .hostname(let host) = result { host.lowercased() } else { nil }
            guard let server = runtime.store.snapshot.listener(port: port)?.tls?.server(forSNI: name),
                  let (context, localURI) = runtime.tlsContexts.material(for: server) else {
                // No server takes this SNI: Envoy fails the handshake the same way (no filter chain).
                // The SNI handler ignores a failed future, so the connection is closed here.
                handshakeTimeout.cancel()
                runtime.record(.tlsUnknownServerName)
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(TLSRefused(sni: name))
            }
            return channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(NIOSSLServerHandler(context: context))
                let tls = DownstreamTLS(serverName: name, subjectAltNames: server.subjectAltNames,
                                        localURI: localURI, handshakeTimeout: handshakeTimeout)
                try sync.addHandler(TLSSessionHandler(tls: tls, metrics: runtime.metrics) { pipeline, tls, http2 in
                    if http2 {
                        try HTTP2Server.configure(pipeline, runtime: runtime, loop: loop, port: port, tls: tls)
                    } else {
                        try pipeline.addHandler(DownstreamHandler(
                            runtime: runtime, loop: loop, listenerPort: port, limits: limits,
                            headersTimeout: headersTimeout, tls: tls))
                    }
                })
            }
        })
        try channel.pipeline.syncOperations.addHandler(sni)
        try channel.pipeline.syncOperations.addHandler(TLSRefusalHandler(metrics: runtime.metrics))
    }

    /// TLS PASSTHROUGH and TCP ports: bytes are relayed, never parsed. Passthrough reads the SNI from the
    /// ClientHello (within the handshake timeout) and replays the ClientHello upstream.
    private static func configureRelay(_ channel: Channel, stream: StreamRoutes, snapshot: Snapshot, runtime: ProxyRuntime,
                                       loop: LoopContext, port: Int, timeout: TimeAmount) throws {
        let sync = channel.pipeline.syncOperations
        switch stream.mode {
        case .tcp:
            try sync.addHandler(StreamRelayHandler(runtime: runtime, loop: loop, listenerPort: port, snapshot: snapshot,
                                                   route: stream.route(forSNI: nil), serverName: nil))
        case .tlsPassthrough:
            let helloTimeout = channel.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                if channel.isActive { runtime.record(.tlsHandshakeTimeout) }
                channel.close(promise: nil)
            }
            try sync.addHandler(ByteToMessageHandler(SNIHandler { result in
                helloTimeout.cancel()
                let name: String? = if case .hostname(let host) = result { host.lowercased() } else { nil }
                // Routed on the live snapshot; no route: the relay logs NR and closes (Envoy: no filter chain).
                let live = runtime.store.snapshot
                let route = live.listener(port: port)?.stream?.route(forSNI: name)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        StreamRelayHandler(runtime: runtime, loop: loop, listenerPort: port, snapshot: live, route: route,
                                           serverName: name))
                }
            }))
            try sync.addHandler(TLSRefusalHandler(metrics: runtime.metrics))
        }
    }

    /// Stops accepting, lets in-flight requests finish (new ones on open connections get
    /// `connection: close`), and returns when every connection is gone or `timeout` passed.
    public func drain(timeout: TimeAmount) async {
        runtime.beginDrain()
        let listeners = servers.withLockedValue { current -> [Channel] in
            let all = current.values.map(\.channel)
            current.removeAll()
            return all
        }
        for channel in listeners { try? await channel.close() }
        for channel in runtime.connections.all {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
        // Whichever comes first: the last connection closing, or the drain timeout.
        let connections = runtime.connections
        await withTaskGroup(of: Void.self) { waits in
            waits.addTask { await connections.waitUntilEmpty() }
            waits.addTask { try? await Task.sleep(nanoseconds: UInt64(max(0, timeout.nanoseconds))) }
            await waits.next()
            waits.cancelAll()
        }
        for channel in runtime.connections.all { channel.close(promise: nil) }
        await runtime.flushLogs()
    }
}

public struct GatewayServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// No TLS server on the port takes the SNI a client sent.
struct TLSRefused: Error {
    let sni: String?
}

/// Closes a TLS connection whose ClientHello could not be served (no server for its SNI, or not TLS at
/// all): the SNI handler reports it as an error, which would otherwise reach the end of the pipeline.
final class TLSRefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let metrics: GatewayMetrics
    init(metrics: GatewayMetrics) { self.metrics = metrics }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // An unknown SNI was counted where it was refused, and socket errors (a reset, say) pass here
        // on every TLS connection; what is left is a first flight that is not a TLS ClientHello.
        if !(error is TLSRefused || error is IOError || error is ChannelError) { metrics.record(.tlsHandshakeError) }
        context.close(promise: nil)
    }
}
