import NIOCore
import NIOHTTP1
import NIOPosix

/// Upstream HTTP/1.1 connections of one event loop, keyed by cluster and endpoint. Confined to its loop:
/// requests on a loop only use that loop's connections, so no locks and no thread hops on the hot path.
final class ConnectionPool {
    let eventLoop: EventLoop
    private var idle = IdleConnectionStack<UpstreamConnection>(maxIdlePerKey: 256)

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    struct Lease {
        var connection: UpstreamConnection
        var reused: Bool
    }

    func acquire(key: String, address: SocketAddress, connectTimeout: TimeAmount,
                 idleTimeout: TimeAmount, forceNew: Bool = false) -> EventLoopFuture<Lease> {
        eventLoop.assertInEventLoop()
        if !forceNew {
            let oldest = NIODeadline.now() - idleTimeout
            if let connection = idle.take(key, isUsable: { $0.isUsable && $0.idleSince > oldest }) {
                connection.handler.onIdleClose = nil
                return eventLoop.makeSucceededFuture(Lease(connection: connection, reused: true))
            }
        }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
            .connect(to: address)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                return Lease(connection: UpstreamConnection(channel: channel, handler: handler, poolKey: key),
                             reused: false)
            }
    }

    /// Puts a connection whose exchange completed cleanly back for reuse.
    func release(_ connection: UpstreamConnection) {
        eventLoop.assertInEventLoop()
        connection.detach()
        guard connection.isUsable else { connection.close(); return }
        connection.idleSince = .now()
        connection.handler.onIdleClose = { [weak self, unowned connection] in
            self?.idle.remove(connection, key: connection.poolKey)
        }
        if let evicted = idle.put(connection, key: connection.poolKey) {
            evicted.handler.onIdleClose = nil
            evicted.close()
        }
    }

}
