import GatehouseConfig
import GatehouseRateLimit
import GatehouseSecurity
import NIOCore
import NIOPosix
import NIOSSL

/// One event loop's connection to Redis: commands are pipelined (written into one buffer, flushed once
/// per loop tick, answered in order), each waits at most `timeout`, and a connection that fails or
/// stalls is dropped and made again after a back-off. Confined to its loop, like everything a request
/// touches. What waits for what, and when, is `RedisPipeline`'s (pure, unit-tested); this is its I/O.
///
/// A command that cannot be answered fails with `RedisConnection.Failure`: the caller decides what that
/// means (the rate-limit store's `failureMode`); nothing here retries a command, since a retried
/// rate-limit take could count twice.
final class RedisConnection {
    enum Failure: Error, CustomStringConvertible {
        /// No connection (refused, closed, handshake refused, backing off): `why` says which.
        case unavailable(String)
        case timedOut

        var description: String {
            switch self {
            case .unavailable(let why): why
            case .timedOut: "no reply within the timeout"
            }
        }
    }

    typealias Completion = (Result<RESPValue, Failure>) -> Void

    let eventLoop: EventLoop
    private let url: RedisURL
    private let tls: NIOSSLContext?
    private let health: RedisHealth
    private var pipeline: RedisPipeline<any RedisReplyWaiter>
    /// The connection, once up.
    private var channel: Channel?
    /// Commands written since the last flush (or while connecting): one write per loop tick.
    private var outbound: ByteBuffer
    private var writer = RESPCommandWriter()
    private var flushScheduled = false

    init(eventLoop: EventLoop, url: RedisURL, timeout: TimeAmount, tls: NIOSSLContext?, health: RedisHealth) {
        self.eventLoop = eventLoop
        self.url = url
        self.tls = tls
        self.health = health
        var handshakes: [String] = []
        if url.password != nil { handshakes.append("AUTH") }
        if url.database != 0 { handshakes.append("SELECT \(url.database)") }
        pipeline = RedisPipeline(timeout: timeout.nanoseconds, handshakes: handshakes)
        outbound = ByteBufferAllocator().buffer(capacity: 0)
    }

    private static var now: Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }

    /// Sends the command `write` writes; `waiter` hears of it on this loop, at once when backing off.
    func send(_ write: (inout RESPCommandWriter) -> Void, waiter: any RedisReplyWaiter) {
        eventLoop.preconditionInEventLoop()
        let (send, timerDue) = pipeline.send(waiter, now: Self.now)
        switch send {
        case .refuse(let why):
            return waiter.redisReplied(.failure(.unavailable(why)))
        case .write(let connect):
            // The handshake goes first, so it is answered before any command behind it.
            if connect { writeHandshake() }
            writer.reset()
            write(&writer)
            outbound.writeBytes(writer.bytes)
            if connect { self.connect() } else if channel != nil { scheduleFlush() }
        }
        if let timerDue { armTimer(at: timerDue) }
    }

    /// Sends a command given as its arguments, for callers off the request path (explain's GET).
    func send(_ arguments: [String], completion: @escaping Completion) {
        send({ $0.command(arguments) }, waiter: RedisReplyCallback(completion))
    }

    private func writeHandshake() {
        if let password = url.password {
            let auth = url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            outbound.writeBytes(RESPEncoder.command(auth))
        }
        if url.database != 0 { outbound.writeBytes(RESPEncoder.command(["SELECT", String(url.database)])) }
    }

    /// One flush for every command of this loop tick: requests arriving together share a write.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flush()
        }
    }

    private func flush() {
        guard let channel, outbound.readableBytes > 0 else { return }
        channel.writeAndFlush(outbound, promise: nil)
        // The channel holds the written bytes until the kernel takes them: a new buffer, not a clear.
        outbound = channel.allocator.buffer(capacity: max(512, outbound.capacity))
    }

    private func connect() {
        let tls = self.tls
        let host = url.host
        // The channel is made on this connection's loop (the bootstrap's only loop).
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(max(.seconds(1), .nanoseconds(pipeline.timeout)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        // A name is checked against the certificate; an address is not a name to send as SNI.
                        let name = IPAddress(host) == nil ? host : nil
                        try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try sync.addHandler(RedisReplyHandler(connection: bound.value))
                }
            }
        bootstrap.connect(host: url.host, port: url.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard pipeline.connected() else { channel.close(promise: nil); return }
                self.channel = channel
                flush()
            case .failure(let error):
                // Unless the stall timer gave up on this attempt already.
                guard pipeline.phase == .connecting else { return }
                failed("cannot connect to \(url): \(error)")
            }
        }
    }

    // MARK: events from the channel

    fileprivate func received(_ value: RESPValue, on channel: Channel) {
        guard channel === self.channel else {
            channel.close(promise: nil)
            return
        }
        switch pipeline.received() {
        case .unexpected:
            failed("\(url) sent a reply nothing asked for")
        case .handshake(let name):
            if case .error(let message) = value { failed("\(url) refused \(name): \(message)") }
        case .command(let waiter, let recovered):
            if recovered { health.recovered(url: url) }
            waiter?.redisReplied(.success(value))
        }
    }

    fileprivate func broken(_ channel: Channel, why: String) {
        guard channel === self.channel else { return }
        failed(why)
    }

    /// The connection is gone (or never came): every command owed fails, and commands fail at once
    /// until the pipeline's back-off ends.
    private func failed(_ why: String) {
        // Forgotten before the close: closing calls back (`broken`) at once.
        let channel = self.channel
        self.channel = nil
        let waiting = pipeline.failed(why, now: Self.now, jitter: Double.random(in: 0..<1))
        channel?.close(promise: nil)
        outbound.clear()
        health.failed(url: url, why: why)
        for waiter in waiting { waiter.redisReplied(.failure(.unavailable(why))) }
    }

    // MARK: timeouts

    private func armTimer(at deadline: Int64) {
        eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(UInt64(deadline))) { [self] in timerFired() }
    }

    private func timerFired() {
        let outcome = pipeline.timerFired(now: Self.now)
        if outcome.stalled {
            failed("\(url) answered nothing for \(pipeline.stallLimit / 1_000_000) ms")
        } else if let wake = outcome.wakeAt {
            armTimer(at: wake)
        }
        for waiter in outcome.expired {
            health.timedOut(url: url, after: .nanoseconds(pipeline.timeout))
            waiter.redisReplied(.failure(.timedOut))
        }
    }
}

/// Hears one command's reply (an error reply is a reply) or why there is none, on the connection's loop,
/// exactly once. An object rather than a closure: the rate-limit store's waiter is the request's
/// `PendingDispatch`, made anyway, so a command on the request path costs no closure context.
protocol RedisReplyWaiter: AnyObject {
    func redisReplied(_ result: Result<RESPValue, RedisConnection.Failure>)
}

/// A closure as a waiter, for commands off the request path.
final class RedisReplyCallback: RedisReplyWaiter {
    private let completion: RedisConnection.Completion

    init(_ completion: @escaping RedisConnection.Completion) { self.completion = completion }

    func redisReplied(_ result: Result<RESPValue, RedisConnection.Failure>) { completion(result) }
}

/// Reads RESP replies off the connection and hands each to its `RedisConnection`.
private final class RedisReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: RedisConnection
    private var buffer = ByteBuffer()

    init(connection: RedisConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffer.readableBytes == 0 { buffer = bytes } else { buffer.writeBuffer(&bytes) }
        do {
            while buffer.readableBytes > 0 {
                guard let (value, end) = try buffer.withUnsafeReadableBytes({ try RESPParser.parse($0, from: 0) }) else { break }
                buffer.moveReaderIndex(forwardBy: end)
                connection.received(value, on: context.channel)
            }
        } catch {
            connection.broken(context.channel, why: "unreadable reply from Redis: \(error)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.broken(context.channel, why: "Redis closed the connection")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.broken(context.channel, why: "connection to Redis failed: \(error)")
        context.close(promise: nil)
    }
}
