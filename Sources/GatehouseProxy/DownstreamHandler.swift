import GatehouseHTTP1
import GatehouseRouting
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore

/// Serves one downstream HTTP/1.1 connection, straight from the socket's bytes: decodes requests one at
/// a time (a pipelined request stays undecoded until the one before it is answered), routes each, answers
/// locally or hands it to a `ProxyExchange`, applies back-pressure by holding `read`, and writes one
/// access-log line per request.
final class DownstreamHandler: ChannelDuplexHandler, RemovableChannelHandler, DownstreamResponder {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The request currently being answered.
    final class RequestState {
        let version: HTTP1Version
        let hasBody: Bool
        var record: AccessLogRecord
        let startedAt: NIODeadline
        var keepAlive: Bool
        var requestEnded = false
        var responseStarted = false
        var responseEnded = false
        /// The response body is sent with chunked framing.
        var chunkedResponse = false
        var exchange: ProxyExchange?

        init(version: HTTP1Version, hasBody: Bool, record: AccessLogRecord, keepAlive: Bool) {
            self.version = version
            self.hasBody = hasBody
            self.record = record
            self.keepAlive = keepAlive
            startedAt = .now()
        }
    }

    let runtime: ProxyRuntime
    let loop: LoopContext
    let listenerPort: Int
    private var decoder: HTTP1RequestDecoder
    /// Bytes received and not decoded yet.
    private var inbound = ByteBuffer()
    private var headersTimer: RequestHeadersTimer
    private var context: ChannelHandlerContext!
    private(set) var current: RequestState?
    private var processing = false
    /// Until the first bytes rule HTTP/2's preface out (plain ports only).
    private var awaitingFirstBytes: Bool
    /// The connection turned out to be HTTP/2 and belongs to its handler now: pass everything through.
    private var handedOff = false
    /// A WebSocket upgrade succeeded: bytes go to and from the upstream untouched.
    private var tunneling = false
    private var readPending = false
    /// Between channelRead and channelReadComplete: writes upstream can wait for the one flush there.
    private(set) var inReadCycle = false
    private var upstreamBlocked = false
    private var closing = false
    private var quiescing = false
    private var localAddress: String?
    private var remoteAddress: String?
    private var remoteIP: String?
    private var localIP: String?
    /// `remoteIP` parsed once for the policies of every request on this connection.
    private var clientAddress: IPAddress?
    private var localIPAddress: IPAddress?
    private static let crlf: ByteBuffer = ByteBuffer(staticString: "\r\n")

    /// Set on a TLS port; filled in by the handshake.
    private var tls: DownstreamTLS?

    private var idleTimer: IdleConnectionTimer

    init(runtime: ProxyRuntime, loop: LoopContext, listenerPort: Int, limits: HTTP1Limits,
         headersTimeout: TimeAmount, tls: DownstreamTLS? = nil) {
        idleTimer = IdleConnectionTimer(timeout: .nanoseconds(runtime.store.snapshot.settings.idleTimeoutNanoseconds))
        self.runtime = runtime
        self.tls = tls
        self.loop = loop
        self.listenerPort = listenerPort
        decoder = HTTP1RequestDecoder(limits: limits)
        headersTimer = RequestHeadersTimer(timeout: headersTimeout)
        awaitingFirstBytes = tls == nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        localAddress = context.channel.localAddress.map(SocketAddressText.describe)
        remoteAddress = context.channel.remoteAddress.map(SocketAddressText.describe)
        remoteIP = context.channel.remoteAddress?.ipAddress
        localIP = context.channel.localAddress?.ipAddress
        clientAddress = remoteIP.flatMap { IPAddress($0) }
        localIPAddress = localIP.flatMap { IPAddress($0) }
        armIdleTimer()
    }

    /// The context holds this handler: dropping it here breaks the cycle, or every connection leaks.
    func handlerRemoved(context: ChannelHandlerContext) {
        headersTimer.cancel()
        idleTimer.cancel()
        self.context = nil
    }

    private func armIdleTimer() {
        idleTimer.start(on: context.eventLoop) { [weak self] in self?.idleTimerFired() }
    }

    private func idleTimerFired() {
        guard !closing, !handedOff else { return }
        // A request or a tunnel in progress is not idle: look again a whole timeout later.
        if current != nil || tunneling {
            idleTimer.activity()
            return armIdleTimer()
        }
        // Active since the timer was set: look again when the quiet period since then ends.
        guard idleTimer.expired else { return armIdleTimer() }
        runtime.record(.idleTimeout)
        closeConnection()
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !handedOff else { return context.fireChannelRead(data) }
        inReadCycle = true
        idleTimer.activity()
        var bytes = unwrapInboundIn(data)
        if tunneling {
            current?.record.bytesReceived += bytes.readableBytes
            current?.exchange?.tunnelToUpstream(bytes)
            return
        }
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        if awaitingFirstBytes {
            // A plain connection may be HTTP/2 with prior knowledge (h2c): its preface decides.
            switch HTTP2Server.check(inbound) {
            case .needMoreBytes:
                // Still timed: a client that sends a few bytes of the preface and stops gets cut off.
                headersTimer.headIncomplete(on: context.eventLoop) { [weak self] in self?.headersTimedOut() }
                return
            case .http2: return switchToHTTP2(context)
            case .http1: awaitingFirstBytes = false
            }
        }
        processInbound()
    }

    /// Hands the connection to the HTTP/2 handler, with the bytes read so far, and leaves the pipeline.
    private func switchToHTTP2(_ context: ChannelHandlerContext) {
        awaitingFirstBytes = false
        handedOff = true
        headersTimer.cancel()
        idleTimer.cancel()
        do {
            // This handler is the last of a plain connection's pipeline, so .last is right after it.
            let pipeline = context.pipeline.syncOperations
            try HTTP2Server.configure(pipeline, runtime: runtime, loop: loop,
                                      port: listenerPort, tls: nil)
            let bytes = inbound
            inbound = ByteBuffer()
            context.fireChannelRead(NIOAny(bytes))
            pipeline.removeHandler(context: context, promise: nil)
            // A read held back here would leave the connection unread for good.
            if readPending {
                readPending = false
                context.read()
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        current?.exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    /// Decodes and acts on as much of `inbound` as the connection's state allows.
    private func processInbound() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        do {
            while !closing, !upstreamBlocked {
                // The next pipelined request waits until this one is answered.
                if let current, current.requestEnded { break }
                guard let event = try decoder.next(&inbound) else { break }
                switch event {
                case .head(let head):
                    headersTimer.cancel()
                    startRequest(head)
                case .body(let body):
                    guard let request = current else { continue }
                    request.record.bytesReceived += body.readableBytes
                    request.exchange?.requestBody(body)
                case .end(let trailers):
                    guard let request = current else { continue }
                    request.requestEnded = true
                    request.exchange?.requestEnd(trailers)
                    if request.responseEnded { completeRequest(request) }
                }
            }
        } catch let error as HTTP1Error {
            decodingFailed(error)
        } catch {
            closeConnection()
        }
        // Body decoded outside a read (the upstream became writable) has no channelReadComplete to flush it.
        if !inReadCycle { current?.exchange?.flushUpstream() }
        if current == nil, !closing, decoder.expectsHead, inbound.readableBytes > 0 {
            headersTimer.headIncomplete(on: context.eventLoop) { [weak self] in self?.headersTimedOut() }
        }
        resumeReadsIfAllowed()
    }

    private func decodingFailed(_ error: HTTP1Error) {
        runtime.record(error == .headersTooLarge ? .requestHeadersTooLarge : .malformedRequest)
        guard current?.responseStarted != true else { closeConnection(); return }
        let request = current ?? makeStubRequest()
        switch error {
        case .headersTooLarge: sendLocalReply(.headersTooLarge, for: request)
        case .unsupportedTransferEncoding: sendLocalReply(.notImplemented, for: request)
        case .malformed(let details): sendLocalReply(.badRequest(details: details), for: request)
        }
    }

    private func headersTimedOut() {
        headersTimer.fired()
        guard current == nil, !closing else { return }
        runtime.record(.requestHeadersTimeout)
        sendLocalReply(.requestHeadersTimeout, for: makeStubRequest())
    }

    func channelInactive(context: ChannelHandlerContext) {
        headersTimer.cancel()
        idleTimer.cancel()
        tls?.handshakeTimeout.cancel()
        if let request = current, tunneling {
            // The client ended its tunnel: the normal end of a WebSocket session, logged once.
            request.exchange?.abandon()
            request.exchange = nil
            request.record.connectionTerminationDetails = "downstream_tunnel_closed"
            writeLog(request)
        } else if let request = current, !request.responseEnded {
            request.exchange?.abandon()
            request.exchange = nil
            if request.record.responseFlags.isEmpty { request.record.responseFlags = .downstreamConnectionTermination }
            request.record.connectionTerminationDetails = request.record.connectionTerminationDetails
                ?? "downstream_remote_disconnect"
            if request.record.responseCodeDetails == nil {
                request.record.responseCodeDetails = "downstream_remote_disconnect"
            }
            writeLog(request)
        }
        current = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // I/O errors (reset by peer…): the connection is gone.
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            quiescing = true
            if let current { current.keepAlive = false } else if inbound.readableBytes == 0 { closeConnection() }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: outbound (read gating)

    func read(context: ChannelHandlerContext) {
        if shouldHoldReads, !handedOff { readPending = true } else { context.read() }
    }

    /// Reads stop while the upstream cannot take more, and while undecoded bytes wait for the request
    /// in progress: at most one read's worth of a pipelined request is ever buffered.
    private var shouldHoldReads: Bool {
        if tunneling { return closing || upstreamBlocked }
        return closing || upstreamBlocked || (current?.requestEnded == true && inbound.readableBytes > 0)
    }

    private func resumeReadsIfAllowed() {
        guard readPending, !shouldHoldReads else { return }
        readPending = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { current?.exchange?.downstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: requests

    private func makeStubRequest() -> RequestState {
        var record = baseRecord()
        record.method = nil
        record.path = nil
        let request = RequestState(version: .http1_1, hasBody: false, record: record, keepAlive: false)
        current = request
        return request
    }

    private func baseRecord() -> AccessLogRecord {
        var record = AccessLogRecord()
        record.startTimeMillis = Timestamp.nowMillis()
        record.downstreamLocalAddress = localAddress
        record.downstreamRemoteAddress = remoteAddress
        return record
    }

    private func startRequest(_ head: HTTP1RequestHead) {
        // The record is filled in place: a local copy handed over would be copied field by field.
        let request = RequestState(version: head.version, hasBody: head.framing != .none, record: baseRecord(),
                                   keepAlive: head.keepAlive && !quiescing && !runtime.isDraining)
        current = request
        let host = head.headers.first(role: .host)
        let requestID = head.headers.first(role: .requestID).flatMap { $0.isEmpty ? nil : $0 }
            ?? RequestID.generate(using: &loop.random)
        request.record.method = head.method
        request.record.path = head.target
        request.record.protocol = head.version.text
        request.record.userAgent = head.headers.first(role: .userAgent)
        request.record.xForwardedFor = head.headers.first(role: .forwardedFor)
        request.record.authority = host
        request.record.requestID = requestID

        let origin = DownstreamOrigin(listenerPort: listenerPort, tls: tls, clientIP: remoteIP, localIP: localIP,
                                      clientAddress: clientAddress, localAddress: localIPAddress)
        let dispatch = RequestDispatcher.dispatch(head, host: host, requestID: requestID, origin: origin,
                                                  snapshot: runtime.store.snapshot, loop: loop,
                                                  allocator: context.channel.allocator, keys: runtime.jwks,
                                                  counters: loop.decisions, record: &request.record)
        switch dispatch {
        case .reply(let reply, let route):
            sendLocalReply(reply, for: request, route: route)
        case .forward(let forwarding):
            if head.expectsContinue, head.version == .http1_1 {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")),
                                      promise: nil)
            }
            let exchange = ProxyExchange(downstream: self, loop: loop, runtime: runtime, forwarding: forwarding)
            request.exchange = exchange
            exchange.start()
        }
    }

    // MARK: responses (called by the exchange and for local replies)

    func sendLocalReply(_ reply: LocalReply, for request: RequestState, route: Route? = nil) {
        guard !request.responseStarted else {
            abortResponse(flag: reply.flag, details: reply.details)
            return
        }
        // A body we have not read yet would have to be drained first: close instead, as Envoy does.
        if reply.closeConnection || (!request.requestEnded && request.hasBody) { request.keepAlive = false }
        let headers = reply.headers(route: route)
        request.record.responseFlags = reply.flag
        request.record.responseCodeDetails = reply.details
        // The exchange holds this handler unowned: it must never call back once it has been dropped.
        request.exchange?.abandon()
        request.exchange = nil
        respondHead(status: reply.status, headers: headers, framing: .contentLength(Int64(reply.body.count)),
                    bodyBytes: reply.body)
        respondEnd(nil)
    }

    /// Writes the status line and headers. `framing` is how the body arrives; the client gets a
    /// Content-Length body as is, anything else chunked (HTTP/1.1) or ended by the close (HTTP/1.0).
    /// `bodyBytes` are written in the same buffer (local replies).
    func respondHead(status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming, bodyBytes: [UInt8] = []) {
        guard let request = current else { return }
        switch framing {
        case .chunked, .untilClose:
            if request.version == .http1_1 { request.chunkedResponse = true } else { request.keepAlive = false }
        case .none, .contentLength:
            break
        }
        if quiescing || runtime.isDraining { request.keepAlive = false }
        var out = context.channel.allocator.buffer(capacity: headers.estimatedSize + bodyBytes.count + 96)
        HTTP1Encoder.writeStatusLine(status: status, into: &out)
        runtime.metrics.record(.invalidField, count: headers.write(into: &out))
        if request.chunkedResponse { out.writeStaticString("transfer-encoding: chunked\r\n") }
        if status == 101 {
            // Switching protocols: the headers carry `connection: upgrade`; no keep-alive talk.
        } else if !request.keepAlive {
            out.writeStaticString("connection: close\r\n")
        } else if request.version == .http1_0 {
            out.writeStaticString("connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        out.writeBytes(bodyBytes)
        request.record.bytesSent += bodyBytes.count
        request.responseStarted = true
        request.record.responseCode = status
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// Returns whether the downstream can take more without buffering.
    func respondBody(_ body: ByteBuffer) -> Bool {
        guard let request = current, body.readableBytes > 0 else { return context.channel.isWritable }
        request.record.bytesSent += body.readableBytes
        if request.chunkedResponse {
            var header = context.channel.allocator.buffer(capacity: 18)
            HTTP1Encoder.writeChunkHeader(size: body.readableBytes, into: &header)
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(body), promise: nil)
            context.write(wrapOutboundOut(Self.crlf), promise: nil)
        } else {
            context.write(wrapOutboundOut(body), promise: nil)
        }
        return context.channel.isWritable
    }

    func flushDownstream() { context.flush() }

    func respondEnd(_ trailers: HTTPHeaderBlock?) {
        guard let request = current else { return }
        request.responseEnded = true
        request.exchange = nil
        if request.chunkedResponse {
            var last = context.channel.allocator.buffer(capacity: 5 + (trailers?.estimatedSize ?? 0))
            runtime.metrics.record(.invalidField, count: HTTP1Encoder.writeLastChunk(trailers: trailers, into: &last))
            context.write(wrapOutboundOut(last), promise: nil)
        }
        let keepAlive = request.keepAlive
        if keepAlive {
            // No promise on the common path: a promise and its callback per request show in the profile.
            context.flush()
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
            closing = true
        }
        writeLog(request)
        if request.requestEnded || !keepAlive { completeRequest(request) }
    }

    /// The upstream failed after the response began: HTTP/1.1 can only signal that by closing.
    func abortResponse(flag: ResponseFlags, details: String) {
        guard let request = current else { return }
        request.record.responseFlags = flag
        request.record.responseCodeDetails = details
        request.responseEnded = true
        request.exchange?.abandon()
        request.exchange = nil
        writeLog(request)
        closeConnection()
    }

    // MARK: tunnel (WebSocket after a 101)

    var canTunnel: Bool { true }

    func startTunnel() {
        tunneling = true
        headersTimer.cancel()
        // Bytes the client sent after its upgrade request (its first frames) go up the tunnel now.
        if inbound.readableBytes > 0, let request = current {
            let early = inbound
            inbound = ByteBuffer()
            request.record.bytesReceived += early.readableBytes
            request.exchange?.tunnelToUpstream(early)
        }
        resumeReadsIfAllowed()
    }

    func tunnelToClient(_ bytes: ByteBuffer) -> Bool {
        current?.record.bytesSent += bytes.readableBytes
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        return context.channel.isWritable
    }

    /// The upstream closed the tunnel: one access-log line for the whole tunnel, then close.
    func tunnelClosed() {
        guard let request = current else { return closeConnection() }
        request.responseEnded = true
        request.exchange = nil
        request.record.connectionTerminationDetails = "upstream_tunnel_closed"
        writeLog(request)
        current = nil
        let channel = context.channel
        closing = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    func updateRecord(_ update: (inout AccessLogRecord) -> Void) {
        guard let request = current else { return }
        update(&request.record)
    }

    func setUpstreamBlocked(_ blocked: Bool) {
        upstreamBlocked = blocked
        if !blocked { processInbound() }
    }

    private func completeRequest(_ request: RequestState) {
        guard current === request else { return }
        current = nil
        idleTimer.activity()
        upstreamBlocked = false
        if closing { return }
        if quiescing, inbound.readableBytes == 0 { closeConnection(); return }
        processInbound()
    }

    private func writeLog(_ request: RequestState) {
        request.record.durationMillis = (NIODeadline.now() - request.startedAt).nanoseconds / 1_000_000
        runtime.log(&request.record, on: loop)
    }

    private func closeConnection() {
        guard !closing else { return }
        closing = true
        headersTimer.cancel()
        context.close(promise: nil)
    }
}
