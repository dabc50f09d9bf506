import GatehouseConfig
import GatehouseRateLimit
import GatehouseSecurity
import NIOCore
import NIOPosix
import NIOSSL

/// One event loop's connection to Redis: commands are pipelined (written as they come, flushed once per
/// loop tick, answered in order), each waits at most `timeout`, and a connection that fails or stalls is
/// dropped and made again after a back-off. Confined to its loop, like everything a request touches.
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

    private enum State {
        case idle
        case connecting
        case ready(Channel)
        /// Commands fail at once until `until`, then the next one connects again.
        case backingOff(until: NIODeadline)
    }

    /// What hears a command's reply (an error reply is a reply) or why there is none. Called on the loop.
    typealias Completion = (Result<RESPValue, Failure>) -> Void

    /// A command sent (or queued to send) and not answered yet. Replies come in order, so a command that
    /// timed out stays here with no completion, to be matched with its late reply.
    private struct Pending {
        var completion: Completion?
        var deadline: NIODeadline
        /// A handshake command (AUTH, SELECT): an error reply to it fails the connection.
        var handshake: String?
    }

    let eventLoop: EventLoop
    private let url: RedisURL
    private let timeout: TimeAmount
    private let tls: NIOSSLContext?
    private let health: RedisHealth
    private var state = State.idle
    private var pending = CircularBuffer<Pending>()
    /// Commands written while connecting, sent once the connection is up.
    private var unsent: ByteBuffer
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    /// Connection failures in a row, for the back-off.
    private var failures = 0
    /// This loop saw a failure or a timeout since its last answer (`RedisHealth` hears of the next one).
    private var troubled = false

    /// A connection owing a reply for this long after a command's deadline is stuck: it is dropped.
    private var stallLimit: TimeAmount { max(.seconds(1), timeout * 20) }

    init(eventLoop: EventLoop, url: RedisURL, timeout: TimeAmount, tls: NIOSSLContext?, health: RedisHealth) {
        self.eventLoop = eventLoop
        self.url = url
        self.timeout = timeout
        self.tls = tls
        self.health = health
        unsent = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// Sends one command; `completion` hears of it on this loop, at once when backing off. A callback
    /// rather than a future: one closure per request instead of a promise and a chain of them.
    func send(_ arguments: [String], completion: @escaping Completion) {
        eventLoop.preconditionInEventLoop()
        if case .backingOff(let until) = state {
            guard NIODeadline.now() >= until else {
                return completion(.failure(.unavailable(health.lastProblem ?? "reconnecting")))
            }
            state = .idle
        }
        if case .idle = state { connect() }
        enqueue(arguments, Pending(completion: completion, deadline: .now() + timeout))
    }

    private func enqueue(_ arguments: [String], _ entry: Pending) {
        pending.append(entry)
        switch state {
        case .ready(let channel):
            var buffer = channel.allocator.buffer(capacity: 512)
            RESPEncoder.write(command: arguments, into: &buffer)
            channel.write(buffer, promise: nil)
            scheduleFlush()
        case .connecting, .idle, .backingOff:
            RESPEncoder.write(command: arguments, into: &unsent)
        }
        if timer == nil { armTimer(at: entry.deadline) }
    }

    /// One flush for every command of this loop tick: requests arriving together share a write.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            if case .ready(let channel) = state { channel.flush() }
        }
    }

    private func connect() {
        state = .connecting
        // The handshake goes first, so it is answered before any command queued behind it.
        if let password = url.password {
            let auth = url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            enqueueHandshake(auth, name: "AUTH")
        }
        if url.database != 0 { enqueueHandshake(["SELECT", String(url.database)], name: "SELECT \(url.database)") }
        let tls = self.tls
        let host = url.host
        // The channel is made on this connection's loop (the bootstrap's only loop).
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(max(.seconds(1), timeout))
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
                guard case .connecting = state else { channel.close(promise: nil); return }
                state = .ready(channel)
                if unsent.readableBytes > 0 {
                    channel.writeAndFlush(unsent, promise: nil)
                    unsent = channel.allocator.buffer(capacity: 0)
                }
            case .failure(let error):
                // Unless the stall timer gave up on this attempt already.
                guard case .connecting = state else { return }
                failed("cannot connect to \(url): \(error)")
            }
        }
    }

    private func enqueueHandshake(_ arguments: [String], name: String) {
        pending.append(Pending(completion: nil, deadline: .now() + stallLimit, handshake: name))
        RESPEncoder.write(command: arguments, into: &unsent)
    }

    // MARK: events from the channel

    fileprivate func received(_ value: RESPValue, on channel: Channel) {
        guard case .ready(let current) = state, current === channel, let entry = pending.popFirst() else {
            channel.close(promise: nil)
            return
        }
        if let handshake = entry.handshake {
            if case .error(let message) = value { failed("\(url) refused \(handshake): \(message)") }
            return
        }
        if troubled {
            // The first answer after a failure or a timeout on this loop: the store is back.
            troubled = false
            failures = 0
            health.recovered(url: url)
        }
        entry.completion?(.success(value))
    }

    fileprivate func broken(_ channel: Channel, why: String) {
        guard case .ready(let current) = state, current === channel else { return }
        failed(why)
    }

    /// The connection is gone (or never came): every command waiting fails, and the next one waits for
    /// the back-off (100 ms, doubling to 2 s, with jitter so loops and replicas do not reconnect in step).
    private func failed(_ why: String) {
        // The state changes before the close: closing calls back (`broken`) at once.
        let channel: Channel? = if case .ready(let channel) = state { channel } else { nil }
        failures += 1
        troubled = true
        let base = min(2_000, 100 << min(failures - 1, 5))
        let jitter = Int.random(in: 0...(base / 4))
        state = .backingOff(until: .now() + .milliseconds(Int64(base - base / 8 + jitter)))
        channel?.close(promise: nil)
        unsent.clear()
        health.failed(url: url, why: why)
        let waiting = pending
        pending.removeAll()
        for entry in waiting { entry.completion?(.failure(.unavailable(why))) }
    }

    // MARK: timeouts

    private func armTimer(at deadline: NIODeadline) {
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in timerFired() }
    }

    /// Fails the commands past their deadline; drops a connection that owes replies and sends none.
    private func timerFired() {
        timer = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for index in pending.indices {
            guard let completion = pending[index].completion else { continue }
            if pending[index].deadline <= now {
                pending[index].completion = nil
                troubled = true
                health.timedOut(url: url, after: timeout)
                completion(.failure(.timedOut))
            } else if next == nil {
                next = pending[index].deadline
            }
        }
        if let oldest = pending.first, oldest.deadline + stallLimit <= now {
            switch state {
            case .ready, .connecting:
                failed("\(url) answered nothing for \(stallLimit.nanoseconds / 1_000_000) ms")
            case .idle, .backingOff:
                break
            }
        } else if let oldest = pending.first {
            // Wake for the next deadline, or to judge the stall of what is owed.
            let stall = oldest.deadline + stallLimit
            armTimer(at: next.map { min($0, stall) } ?? stall)
        }
    }
}

extension RESPEncoder {
    /// A command as an array of bulk strings, written straight into the connection's buffer (lengths as
    /// digits, no string made per argument).
    static func write(command arguments: [String], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count, into: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            writeDecimal(argument.utf8.count, into: &buffer)
            buffer.writeString(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// `value` in decimal, then CRLF.
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = max(0, value)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { out in
            repeat {
                out[19 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            } while remaining > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: out[(20 - count)...]))
        }
        buffer.writeStaticString("\r\n")
    }
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
