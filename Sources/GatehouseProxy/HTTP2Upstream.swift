import GatehouseSnapshot
import GatehouseHTTP1
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// HTTP/2 (h2c) connections to upstream endpoints of one event loop: one connection per endpoint,
/// shared by every request to it, each request a stream. Confined to its loop, like the HTTP/1.1 pool.
final class HTTP2UpstreamPool {
    let eventLoop: EventLoop
    private var connections: [PoolKey: HTTP2ClientConnection] = [:]
    private var connecting: [PoolKey: EventLoopFuture<HTTP2ClientConnection>] = [:]

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    /// The live connection for `key` when it can take a stream now (made less than `maxAge` ago, when
    /// there is one): the synchronous fast path.
    func ready(key: PoolKey, maxAge: TimeAmount?) -> HTTP2ClientConnection? {
        eventLoop.assertInEventLoop()
        guard let existing = connections[key], existing.isUsable, !existing.isPast(maxAge) else { return nil }
        return existing
    }

    /// The live connection for `key`, or a new one (concurrent requests wait for the same connect). A
    /// connection made more than `maxAge` ago (`maxConnectionDuration`) takes no new stream: it is
    /// retired, closing once its streams end, and a new one replaces it.
    ///
    /// A new connection counts against `budget` (`tcp.maxConnections`) until it closes. It is made even
    /// over the limit (`overflowed` is told): an endpoint has at most one connection per loop here, and
    /// Envoy gives an endpoint a request picked at least one.
    func connection(key: PoolKey, address: SocketAddress, connectTimeout: TimeAmount,
                    transport: UpstreamTransport? = nil, keepalive: TCPKeepalivePolicy? = nil,
                    maxAge: TimeAmount? = nil, budget: ClusterCircuitBreaker? = nil,
                    overflowed: () -> Void = {}) -> EventLoopFuture<HTTP2ClientConnection> {
        eventLoop.assertInEventLoop()
        if let existing = connections[key], existing.isUsable {
            guard existing.isPast(maxAge) else { return eventLoop.assumeIsolated().makeSucceededFuture(existing) }
            existing.retire()
        }
        connections[key] = nil
        if let pending = connecting[key] { return pending }
        if let budget, !budget.beginConnection() {
            budget.forceConnection()
            overflowed()
        }
        let future = UpstreamConnector.connect(on: eventLoop, to: address, timeout: connectTimeout, transport: transport,
                                               keepalive: keepalive) { channel in
            _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
            ) { pushed in
                // Server push is not used: refuse pushed streams.
                pushed.close()
            }
            try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionErrorHandler(metrics: nil))
        }
        .flatMapThrowing { channel in
            let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
            return HTTP2ClientConnection(channel: channel, multiplexer: multiplexer, countsStreams: maxAge != nil)
        }
        connecting[key] = future
        future.assumeIsolated().whenComplete { [weak self] (result: Result<HTTP2ClientConnection, Error>) in
            guard let self else { return }
            connecting[key] = nil
            switch result {
            case .success(let connection):
                connections[key] = connection
                connection.channel.closeFuture.assumeIsolated().whenComplete { [weak self, weak connection] _ in
                    budget?.endConnection()
                    if let self, let connection, connections[key] === connection { connections[key] = nil }
                }
            case .failure:
                budget?.endConnection()
            }
        }
        return future
    }
}

final class HTTP2ClientConnection {
    let channel: Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let localAddress: String?
    let createdAt = NIODeadline.now()
    /// Whether it counts its open streams, which only a connection that may be retired needs (two
    /// callbacks per stream otherwise spared).
    let countsStreams: Bool
    /// Streams opened and not yet closed, when counted.
    private var openStreams = 0
    /// Replaced in the pool (`maxConnectionDuration`): closes once its last stream closes.
    private var retired = false

    init(channel: Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, countsStreams: Bool = false) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.countsStreams = countsStreams
        localAddress = channel.localAddress.map(SocketAddressText.describe)
    }

    var isUsable: Bool { channel.isActive && !retired }

    /// Made `maxAge` ago or more (`maxConnectionDuration`): it takes no new stream. Only a connection
    /// made with a `maxAge` counts its streams, so only it can be retired.
    func isPast(_ maxAge: TimeAmount?) -> Bool {
        guard let maxAge, countsStreams else { return false }
        return NIODeadline.now() - createdAt >= maxAge
    }

    /// Takes no new stream from now on, and closes when the streams under way have ended.
    func retire() {
        retired = true
        if openStreams == 0 { channel.close(promise: nil) }
    }

    /// Opens a stream whose response goes to `receiver`.
    func openStream(for receiver: UpstreamResponseReceiver, requestIsHEAD: Bool) -> EventLoopFuture<HTTP2UpstreamStream> {
        // Everything here runs on the connection's loop; the bound value only crosses the closure.
        let handler = NIOLoopBound(HTTP2UpstreamStreamHandler(receiver: receiver, requestIsHEAD: requestIsHEAD),
                                   eventLoop: channel.eventLoop)
        let promise = channel.eventLoop.makePromise(of: Channel.self)
        multiplexer.createStreamChannel(promise: promise) { stream in
            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(handler.value) }
        }
        if countsStreams {
            openStreams += 1
            promise.futureResult.assumeIsolated().whenComplete { [self] result in
                // A stream that failed to open, or has closed, no longer keeps a retired connection open.
                guard case .success(let stream) = result else { return streamClosed() }
                stream.closeFuture.assumeIsolated().whenComplete { [self] _ in streamClosed() }
            }
        }
        return promise.futureResult.assumeIsolated().map { HTTP2UpstreamStream(channel: $0, handler: handler.value) }
            .nonisolated()
    }

    private func streamClosed() {
        openStreams -= 1
        if retired, openStreams == 0 { channel.close(promise: nil) }
    }
}

/// One request's stream on a shared upstream HTTP/2 connection.
final class HTTP2UpstreamStream {
    let channel: Channel
    let handler: HTTP2UpstreamStreamHandler

    init(channel: Channel, handler: HTTP2UpstreamStreamHandler) {
        self.channel = channel
        self.handler = handler
    }

    var isWritable: Bool { channel.isWritable }

    func write(_ payload: HTTP2Frame.FramePayload) { handler.write(payload) }
    func flush() { handler.flush() }
    func pauseReads() { handler.readsPaused = true }
    func resumeReads() { handler.readsPaused = false }

    /// Stops reporting and resets the stream (the connection stays for other requests).
    func close() {
        handler.receiver = nil
        channel.close(promise: nil)
    }
}

/// Turns an upstream stream's frames into the response callbacks the exchange knows from HTTP/1.1:
/// HEADERS become the head (1xx skipped), DATA the body, a trailing HEADERS the trailers.
final class HTTP2UpstreamStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    weak var receiver: UpstreamResponseReceiver?
    private let requestIsHEAD: Bool
    private var context: ChannelHandlerContext?
    private var headReceived = false
    private var ended = false
    /// The upstream reset the stream with REFUSED_STREAM before a response head.
    private var refused = false
    private var readPending = false
    var readsPaused = false {
        didSet { if !readsPaused, readPending { readPending = false; context?.read() } }
    }

    init(receiver: UpstreamResponseReceiver, requestIsHEAD: Bool) {
        self.receiver = receiver
        self.requestIsHEAD = requestIsHEAD
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ payload: HTTP2Frame.FramePayload) { context?.write(wrapOutboundOut(payload), promise: nil) }
    func flush() { context?.flush() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let receiver, !ended else { return }
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            // Fields an HTTP/1.1 client could be handed ambiguously (control bytes, blanks at the ends) make
            // the response malformed (RFC 9113 §8.2.1): a protocol error, never relayed.
            guard frame.headers.isWellFormed else { return protocolError() }
            if !headReceived {
                guard let status = frame.headers.first(name: ":status").flatMap(Int.init), (100...599).contains(status),
                      status != 101 else {
                    // HTTP/2 has no 101 (RFC 9113 §8.6): it never switches a stream to a tunnel.
                    return protocolError()
                }
                if status < 200 { return }  // interim response
                headReceived = true
                var block = HTTPHeaderBlock()
                var contentLength: Int64?
                for (name, value, _) in frame.headers where !name.hasPrefix(":") {
                    if name == "content-length" {
                        guard let length = FieldSyntax.contentLength(value), contentLength == nil || contentLength == length else {
                            return protocolError()
                        }
                        contentLength = length
                    }
                    block.add(name, value)
                }
                let bodyless = requestIsHEAD || status == 204 || status == 304
                let framing: HTTP1BodyFraming = frame.endStream || bodyless
                    ? .none : contentLength.map { $0 > 0 ? .contentLength($0) : .none } ?? .chunked
                // A response that ends with its HEADERS has an empty body, which an HTTP/1.1 client must be
                // told (without a length it would read until the connection closes).
                if frame.endStream, !bodyless, contentLength == nil { contentLength = 0 }
                receiver.upstreamResponseHead(HTTP1ResponseHead(version: .http1_1, status: status, headers: block,
                                                                framing: framing, connection: ConnectionOptions(),
                                                                declaredContentLength: contentLength))
                if frame.endStream { finish(nil) }
            } else {
                finish(HTTPHeaderBlock(regularFieldsOf: frame.headers))
            }
        case .data(let frame):
            guard headReceived else { return protocolError() }
            if case .byteBuffer(let body) = frame.data, body.readableBytes > 0 { receiver.upstreamResponseBody(body) }
            if frame.endStream { finish(nil) }
        case .rstStream(let code):
            // The stream closes next (channelInactive reports it); a refusal is told apart there.
            if code == .refusedStream, !headReceived { refused = true }
        default:
            break
        }
    }

    private func finish(_ trailers: HTTPHeaderBlock?) {
        ended = true
        let receiver = self.receiver
        self.receiver = nil
        receiver?.upstreamResponseEnd(trailers)
    }

    private func protocolError() {
        ended = true
        let receiver = self.receiver
        self.receiver = nil
        context?.close(promise: nil)
        receiver?.upstreamProtocolError()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused { readPending = true } else { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        receiver?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Reset or connection lost before the response ended.
        if let receiver, !ended {
            ended = true
            self.receiver = nil
            if refused { receiver.upstreamRefusedStream() } else { receiver.upstreamClosed() }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // NIO refuses a malformed field block (a name that is not a lowercase token, a misplaced
        // pseudo-header…) by closing the stream with PROTOCOL_ERROR: the upstream broke the protocol
        // (502 UPE); any other close is a reset (503 UC, from channelInactive).
        if !ended, receiver != nil, let closed = error as? NIOHTTP2Errors.StreamClosed {
            if closed.errorCode == .protocolError { return protocolError() }
            // Refused before the upstream processed anything: retried under `refused-stream`.
            if closed.errorCode == .refusedStream, !headReceived { refused = true }
        }
        context.close(promise: nil)
    }
}
