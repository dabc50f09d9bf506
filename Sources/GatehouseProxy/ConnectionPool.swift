import GatehouseSnapshot
import NIOCore
import GatehouseHTTP1

/// Upstream HTTP/1.1 connections of one event loop, keyed by cluster and endpoint. Confined to its loop:
/// requests on a loop only use that loop's connections, so no locks and no thread hops on the hot path.
final class ConnectionPool {
    let eventLoop: EventLoop
    private var idle = IdleConnectionStack<UpstreamConnection, PoolKey>(maxIdlePerKey: 256)

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    struct Lease {
        var connection: UpstreamConnection
        var reused: Bool
    }

    /// A warm idle connection for `key`, if there is one (the synchronous fast path: no future): idle
    /// for less than `idleTimeout`, and made less than `maxAge` ago when there is one.
    func takeIdle(key: PoolKey, idleTimeout: TimeAmount, maxAge: TimeAmount? = nil) -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        let now = NIODeadline.now()
        let oldest = now - idleTimeout
        guard let maxAge else { return idle.take(key, isUsable: { $0.isUsable && $0.idleSince > oldest }) }
        let bornAfter = now - maxAge
        return idle.take(key, isUsable: { $0.isUsable && $0.idleSince > oldest && $0.createdAt > bornAfter })
    }

    /// A new connection to `address`, over TLS when `transport` says so.
    func connect(key: PoolKey, address: SocketAddress, connectTimeout: TimeAmount,
                 limits: HTTP1Limits, transport: UpstreamTransport? = nil,
                 keepalive: TCPKeepalivePolicy? = nil) -> EventLoopFuture<Lease> {
        eventLoop.assertInEventLoop()
        return UpstreamConnector.connect(on: eventLoop, to: address, timeout: connectTimeout, transport: transport,
                                         keepalive: keepalive) { channel in
            try channel.pipeline.syncOperations.addHandler(UpstreamHandler(limits: limits))
        }
        .assumeIsolated()
        .flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
            let connection = UpstreamConnection(channel: channel, handler: handler, poolKey: key)
            // Set once, not per release: a connection the upstream closes while idle leaves the pool.
            handler.onIdleClose = { [weak self, weak connection] in
                guard let self, let connection else { return }
                idle.remove(connection, key: connection.poolKey)
            }
            return Lease(connection: connection, reused: false)
        }
        .nonisolated()
    }

    /// Puts a connection whose exchange completed cleanly back for reuse.
    func release(_ connection: UpstreamConnection) {
        eventLoop.assertInEventLoop()
        connection.detach()
        guard connection.isUsable else { connection.close(); return }
        connection.idleSince = .now()
        if let evicted = idle.put(connection, key: connection.poolKey) { evicted.close() }
    }

}
