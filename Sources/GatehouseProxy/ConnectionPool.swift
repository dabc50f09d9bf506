import GatehouseSnapshot
import NIOCore
import GatehouseHTTP1

/// Upstream HTTP/1.1 connections of one event loop, keyed by cluster and endpoint. Confined to its loop:
/// requests on a loop only use that loop's connections, so no locks and no thread hops on the hot path.
///
/// A cluster with `tcp.maxConnections` counts its connections across loops; a request that finds no
/// idle connection and no slot waits here, as Envoy's pending request does, for one of this loop's
/// connections to its endpoint to come free (or to close, making room for a new one).
final class ConnectionPool {
    let eventLoop: EventLoop
    private var idle = IdleConnectionStack<UpstreamConnection, PoolKey>(maxIdlePerKey: 256)
    private var waitList = ConnectionWaitList<PoolKey, ConnectionWaiter>()

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    struct Lease {
        var connection: UpstreamConnection
        var reused: Bool
    }

    typealias Admission = ConnectionWaitList<PoolKey, ConnectionWaiter>.Admission

    /// A warm idle connection for `key`, if there is one (the synchronous fast path: no future): idle
    /// for less than `idleTimeout`, and made less than `maxAge` ago when there is one. Those too old are
    /// closed on the way.
    func takeIdle(key: PoolKey, idleTimeout: TimeAmount, maxAge: TimeAmount? = nil) -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        let now = NIODeadline.now()
        let oldest = now - idleTimeout
        let bornAfter = maxAge.map { now - $0 }
        var stale: [UpstreamConnection] = []
        let taken = idle.take(key, isUsable: { connection in
            let fresh = connection.isUsable && connection.idleSince > oldest
                && (bornAfter.map { connection.createdAt > $0 } ?? true)
            if !fresh { stale.append(connection) }
            return fresh
        })
        // Closed once the stack is left alone: a close can report back (onIdleClose) at once.
        for connection in stale { connection.close() }
        taken?.isIdle = false
        return taken
    }

    /// A connection for the request `waiter` stands for: a new one, or, when the cluster is at
    /// `maxConnections`, the next of this loop's connections to come free. The waiter hears once.
    @discardableResult
    func acquire(_ waiter: ConnectionWaiter) -> Admission {
        eventLoop.assertInEventLoop()
        let admission = admit(waiter.spec)
        switch admission {
        case .connect, .connectOverLimit: connect(for: waiter)
        case .wait: waitList.wait(waiter, for: waiter.spec.key)
        }
        return admission
    }

    /// A waiting request gave up: it hears nothing more.
    func cancel(_ waiter: ConnectionWaiter) {
        waiter.cancel()
        waitList.remove(waiter, for: waiter.spec.key)
    }

    /// Puts a connection whose exchange completed cleanly back for reuse: to the request that has waited
    /// longest for one, else to the idle stack.
    func release(_ connection: UpstreamConnection) {
        eventLoop.assertInEventLoop()
        connection.detach()
        guard connection.isUsable else { connection.close(); return }
        if waitList.waiterCount > 0, let waiter = waitList.takeFirstWaiter(for: connection.poolKey) {
            // On the next tick: the exchange that released the connection is still inside the
            // connection's read of its response.
            eventLoop.assumeIsolated().execute { [self] in
                guard connection.isUsable else {
                    // The upstream closed it meanwhile: the waiter asks again (its slot went with the close).
                    connection.close()
                    if waiter.isWaiting { acquire(waiter) }
                    return
                }
                if !waiter.fulfil(.success(Lease(connection: connection, reused: true))) { release(connection) }
            }
            return
        }
        connection.idleSince = .now()
        connection.isIdle = true
        if let evicted = idle.put(connection, key: connection.poolKey) { evicted.close() }
    }

    private func admit(_ spec: ConnectionWaiter.Spec) -> Admission {
        guard let budget = spec.budget else { return .connect }
        let admission = waitList.admission(for: spec.key, slotGranted: budget.beginConnection())
        if admission == .connectOverLimit { budget.forceConnection() }
        return admission
    }

    private func connect(for waiter: ConnectionWaiter) {
        let spec = waiter.spec
        waitList.connectionOpened(spec.key)
        UpstreamConnector.connect(on: eventLoop, to: spec.address, timeout: spec.connectTimeout, transport: spec.transport,
                                  keepalive: spec.keepalive) { channel in
            try channel.pipeline.syncOperations.addHandler(UpstreamHandler(limits: spec.limits))
        }
        .assumeIsolated()
        .whenComplete { [self] result in
            switch result {
            case .success(let channel):
                let connection: UpstreamConnection
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                    connection = UpstreamConnection(channel: channel, handler: handler, poolKey: spec.key)
                } catch {
                    channel.close(promise: nil)
                    connectionGone(spec)
                    _ = waiter.fulfil(.failure(error))
                    return
                }
                adopt(connection, spec: spec)
                if !waiter.fulfil(.success(Lease(connection: connection, reused: false))) { release(connection) }
            case .failure(let error):
                connectionGone(spec)
                _ = waiter.fulfil(.failure(error))
            }
        }
    }

    /// Wires a new connection's end into the pool: it leaves the idle stack when the upstream closes it,
    /// is closed after `idleTimeout` unused, and gives its slot to whoever waits when it closes.
    private func adopt(_ connection: UpstreamConnection, spec: ConnectionWaiter.Spec) {
        connection.handler.onIdleClose = { [weak self, weak connection] in
            guard let self, let connection else { return }
            idle.remove(connection, key: connection.poolKey)
        }
        armIdleTimer(connection, timeout: spec.idleTimeout)
        connection.channel.closeFuture.assumeIsolated().whenComplete { [self, weak connection] _ in
            connection?.idleTask?.cancel()
            connectionGone(spec)
        }
    }

    /// Envoy's upstream `idle_timeout`: an idle connection closes once unused for `timeout`, so it
    /// neither holds the upstream's resources nor a `maxConnections` slot for ever. One timer per
    /// connection per period, not per request: on firing early it re-arms for the time left.
    private func armIdleTimer(_ connection: UpstreamConnection, timeout: TimeAmount) {
        guard timeout > .zero else { return }
        let from = connection.isIdle ? connection.idleSince : NIODeadline.now()
        connection.idleTask = eventLoop.assumeIsolated().scheduleTask(deadline: from + timeout) { [weak self, weak connection] in
            guard let self, let connection else { return }
            if connection.isIdle, NIODeadline.now() - connection.idleSince >= timeout {
                idle.remove(connection, key: connection.poolKey)
                connection.close()
            } else {
                armIdleTimer(connection, timeout: timeout)
            }
        }
    }

    /// A connection closed or never connected: its slot is free, and the request that has waited longest
    /// for its endpoint may now connect.
    private func connectionGone(_ spec: ConnectionWaiter.Spec) {
        spec.budget?.endConnection()
        waitList.connectionGone(spec.key)
        // No idle connection to the key can exist while requests wait for one: a freed one goes to them.
        guard let waiter = waitList.firstWaiter(for: spec.key) else { return }
        guard admit(waiter.spec) != .wait else { return }
        _ = waitList.takeFirstWaiter(for: spec.key)
        connect(for: waiter)
    }
}

/// A request waiting for an HTTP/1.1 connection of its loop: one being made for it, or the next to come
/// free when its cluster is at `maxConnections`. It hears once, unless cancelled first.
final class ConnectionWaiter {
    /// Where and how a new connection is made, and the cluster count it holds a slot of.
    struct Spec {
        var key: PoolKey
        var address: SocketAddress
        var connectTimeout: TimeAmount
        var limits: HTTP1Limits
        var transport: UpstreamTransport?
        var keepalive: TCPKeepalivePolicy?
        var idleTimeout: TimeAmount
        /// The cluster's circuit breaker when it limits connections.
        var budget: ClusterCircuitBreaker?
    }

    let spec: Spec
    private var deliver: ((Result<ConnectionPool.Lease, Error>) -> Void)?

    init(spec: Spec, deliver: @escaping (Result<ConnectionPool.Lease, Error>) -> Void) {
        self.spec = spec
        self.deliver = deliver
    }

    /// Hands over the result; false when the request gave up meanwhile (the caller keeps the connection).
    func fulfil(_ result: Result<ConnectionPool.Lease, Error>) -> Bool {
        guard let deliver else { return false }
        self.deliver = nil
        deliver(result)
        return true
    }

    func cancel() { deliver = nil }

    var isWaiting: Bool { deliver != nil }
}
