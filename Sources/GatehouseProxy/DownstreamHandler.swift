import GatehouseHTTP1
import GatehouseRouting
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore

/// Serves one downstream HTTP/1.1 connection, straight from the socket's bytes: decodes requests one at
/// a time, routes each, answers locally or hands it to a `ProxyExchange`, and writes one access-log line
/// per request. Every keep-alive, pipelining, upgrade, drain, read-gating and timer decision is
/// `HTTP1ServerConnectionState`'s; this handler carries out the actions it returns.
final class DownstreamHandler: ChannelDuplexHandler, RemovableChannelHandler, DownstreamResponder {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let runtime: ProxyRuntime
    let loop: LoopContext
    let listenerPort: Int
    private var decoder: HTTP1RequestDecoder
    /// Bytes received and not decoded yet.
    private var inbound = ByteBuffer()
    private var headersTimer: RequestHeadersTimer
    private var context: ChannelHandlerContext!
    private var connection: HTTP1ServerConnectionState
    /// The request being answered (its protocol state is `connection`'s).
    private(set) var current: RequestContext?
    /// Re-entrancy guard: a callback from the exchange may ask to decode while decoding.
    private var processing = false
    /// Between channelRead and channelReadComplete: writes upstream can wait for the one flush there.
    private(set) var inReadCycle = false
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
        connection = HTTP1ServerConnectionState(sniffsPreface: tls == nil)
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
        switch connection.idleTimerFired(quietPeriodElapsed: idleTimer.expired) {
        case .none:
            break
        case .extend:
            idleTimer.activity()
            armIdleTimer()
        case .rearm:
            armIdleTimer()
        case .close:
            runtime.record(.idleTimeout)
            headersTimer.cancel()
            context.close(promise: nil)
        }
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let action = connection.bytesArrived()
        if action == .passThrough { return context.fireChannelRead(data) }
        inReadCycle = true
        idleTimer.activity()
        var bytes = unwrapInboundIn(data)
        switch action {
        case .passThrough, .discard:
            return
        case .tunnel:
            current?.record.bytesReceived += bytes.readableBytes
            current?.exchange?.tunnelToUpstream(bytes)
            return
        case .checkPreface, .decode:
            if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        }
        if action == .checkPreface {
            // A plain connection may be HTTP/2 with prior knowledge (h2c): its preface decides.
            let check: HTTP1ServerConnectionState.PrefaceCheck = switch HTTP2Server.check(inbound) {
            case .needMoreBytes: .needMoreBytes
            case .http2: .http2
            case .http1: .http1
            }
            switch connection.prefaceChecked(check) {
            case .waitForMoreBytes:
                // Still timed: a client that sends a few bytes of the preface and stops gets cut off.
                headersTimer.headIncomplete(on: context.eventLoop) { [weak self] in self?.headersTimedOut() }
                return
            case .switchToHTTP2(let owedRead):
                return switchToHTTP2(context, owedRead: owedRead)
            case .decode:
                break
            }
        }
        processInbound()
    }

    /// Hands the connection to the HTTP/2 handler, with the bytes read so far, and leaves the pipeline.
    private func switchToHTTP2(_ context: ChannelHandlerContext, owedRead: Bool) {
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
            if owedRead { context.read() }
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
            // The next pipelined request waits until this one is answered (`mayDecode`).
            while connection.mayDecode {
                guard let event = try decoder.next(&inbound) else { break }
                switch event {
                case .head(let head):
                    headersTimer.cancel()
                    startRequest(head)
                case .body(let body):
                    guard connection.bodyHasAReader, let request = current else { continue }
                    request.record.bytesReceived += body.readableBytes
                    request.forwardBody(body)
                case .end(let trailers):
                    let request = current
                    switch connection.requestEnded() {
                    case .ignore:
                        break
                    case .forward:
                        request?.forwardEnd(trailers)
                    case .forwardAndComplete:
                        request?.forwardEnd(trailers)
                        requestCompleted()
                    }
                }
            }
        } catch let error as HTTP1Error {
            decodingFailed(error)
        } catch {
            closeConnection()
        }
        // Body decoded outside a read (the upstream became writable) has no channelReadComplete to flush it.
        if !inReadCycle { current?.exchange?.flushUpstream() }
        if connection.state == .idle, decoder.expectsHead, inbound.readableBytes > 0 {
            headersTimer.headIncomplete(on: context.eventLoop) { [weak self] in self?.headersTimedOut() }
        }
        resumeReadsIfAllowed()
    }

    private func decodingFailed(_ error: HTTP1Error) {
        runtime.record(error == .headersTooLarge ? .requestHeadersTooLarge : .malformedRequest)
        switch connection.unfinishedRequest() {
        case .send: break
        case .abort, .ignore: return closeConnection()
        }
        let request = current ?? makeStubRequest()
        switch error {
        case .headersTooLarge: sendLocalReply(.headersTooLarge, for: request)
        case .unsupportedTransferEncoding: sendLocalReply(.notImplemented, for: request)
        case .malformed(let details): sendLocalReply(.badRequest(details: details), for: request)
        }
    }

    private func headersTimedOut() {
        headersTimer.fired()
        guard connection.headersTimedOut() == .send else { return }
        runtime.record(.requestHeadersTimeout)
        sendLocalReply(.requestHeadersTimeout, for: makeStubRequest())
    }

    func channelInactive(context: ChannelHandlerContext) {
        headersTimer.cancel()
        idleTimer.cancel()
        tls?.handshakeTimeout.cancel()
        switch connection.channelInactive() {
        case .none:
            break
        case .logTunnelClosed:
            current?.tunnelClosed(by: .downstream)
        case .logDownstreamDisconnect:
            current?.clientDisconnected(connectionClosed: true)
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
            if connection.quiesce(bufferedBytes: inbound.readableBytes > 0) == .close {
                headersTimer.cancel()
                context.close(promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: outbound (read gating)

    func read(context: ChannelHandlerContext) {
        if connection.readRequested(bufferedBytes: inbound.readableBytes > 0) { context.read() }
    }

    private func resumeReadsIfAllowed() {
        if connection.resumeReads(bufferedBytes: inbound.readableBytes > 0) { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { current?.exchange?.downstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: requests

    /// The record of a request whose head never arrived whole (the connection state already counts it).
    private func makeStubRequest() -> RequestContext {
        var record = baseRecord()
        record.method = nil
        record.path = nil
        let request = RequestContext(runtime: runtime, loop: loop, record: record)
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

    private func startRequest(_ head: RequestHead) {
        connection.requestHeadReceived(version: head.version, keepAlive: head.keepAlive,
                                       hasBody: head.framing != .none, expectsContinue: head.expectsContinue,
                                       draining: runtime.isDraining)
        // The record is filled in place: a local copy handed over would be copied field by field.
        let request = RequestContext(runtime: runtime, loop: loop, record: baseRecord())
        current = request
        let host = head.headers.first(role: .host)
        request.record.method = head.method
        request.record.path = head.target
        request.record.protocol = head.version.text
        let requestID = request.describe(headers: head.headers, host: host)

        let origin = DownstreamOrigin(listenerPort: listenerPort, tls: tls, clientIP: remoteIP, localIP: localIP,
                                      clientAddress: clientAddress, localAddress: localIPAddress)
        let dispatch = RequestDispatcher.dispatch(head, host: host, requestID: requestID, origin: origin,
                                                  snapshot: runtime.store.snapshot, loop: loop,
                                                  allocator: context.channel.allocator, keys: runtime.jwks,
                                                  counters: loop.decisions, record: &request.record)
        act(on: dispatch, for: request)
    }

    /// Answers the request, forwards it, or (its rate limits in Redis) waits for the store with its body
    /// undecoded: a request with a body stops the connection's reads meanwhile, so TCP holds the client
    /// back; one without keeps reading (stopping and restarting reads costs two syscalls), its end held.
    private func act(on dispatch: Dispatch, for request: RequestContext) {
        switch dispatch {
        case .reply(let reply, let route):
            sendLocalReply(reply, for: request, route: route)
        case .forward(let forwarding):
            if connection.forwarding() {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")),
                                      promise: nil)
            }
            let exchange = ProxyExchange(downstream: self, loop: loop, runtime: runtime, forwarding: forwarding)
            request.exchange = exchange
            exchange.start()
            if !forwarding.mirrors.isEmpty { request.startMirrors(forwarding.mirrors) }
            request.releaseHeldBody()
        case .awaitRateLimit(let pending):
            readsHeldForRateLimit = connection.exchange?.hasBody == true
            if readsHeldForRateLimit { connection.setUpstreamBlocked(true) }
            request.awaitRateLimitStore(pending, waiter: self, allocator: context.channel.allocator)
        }
    }

    /// The request waiting for the rate-limit store has a body: decoding and reads stop until it is
    /// decided (one request at a time gets that far: pipelined ones wait behind it).
    private var readsHeldForRateLimit = false

    // MARK: responses (called by the exchange and for local replies)

    func sendLocalReply(_ reply: LocalReply, for request: RequestContext, route: Route? = nil) {
        switch connection.localReply(closeConnection: reply.closeConnection) {
        case .send: break
        case .abort: return abortResponse(flag: reply.flag, details: reply.details)
        case .ignore: return
        }
        let reply = request.record.grpc ? reply.forGRPCRequest() : reply
        let headers = reply.headers(route: route)
        request.answeredLocally(reply)
        respondHead(status: reply.status, headers: headers, framing: .contentLength(Int64(reply.body.count)),
                    bodyBytes: reply.body)
        respondEnd(nil)
    }

    /// Writes the status line and headers. `framing` is how the body arrives; the client gets a
    /// Content-Length body as is, anything else chunked (HTTP/1.1) or ended by the close (HTTP/1.0).
    /// `bodyBytes` are written in the same buffer (local replies).
    func respondHead(status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming, bodyBytes: [UInt8] = []) {
        guard let request = current,
              let plan = connection.responseHeadStarting(status: status, bodyFraming: framing,
                                                         draining: runtime.isDraining) else { return }
        var out = context.channel.allocator.buffer(capacity: headers.estimatedSize + bodyBytes.count + 96)
        HTTP1Encoder.writeStatusLine(status: status, into: &out)
        runtime.metrics.record(.invalidField, count: headers.write(into: &out))
        if plan.chunked { out.writeStaticString("transfer-encoding: chunked\r\n") }
        switch plan.connectionField {
        case .omitted: break
        case .close: out.writeStaticString("connection: close\r\n")
        case .keepAlive: out.writeStaticString("connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        out.writeBytes(bodyBytes)
        request.record.bytesSent += bodyBytes.count
        request.record.responseCode = status
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// Returns whether the downstream can take more without buffering.
    func respondBody(_ body: ByteBuffer) -> Bool {
        guard let request = current, body.readableBytes > 0 else { return context.channel.isWritable }
        request.record.bytesSent += body.readableBytes
        if connection.exchange?.chunkedResponse == true {
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
        let chunked = connection.exchange?.chunkedResponse == true
        let action = connection.responseEnded()
        if action == .ignore { return }
        if chunked {
            var last = context.channel.allocator.buffer(capacity: 5 + (trailers?.estimatedSize ?? 0))
            runtime.metrics.record(.invalidField, count: HTTP1Encoder.writeLastChunk(trailers: trailers, into: &last))
            context.write(wrapOutboundOut(last), promise: nil)
        }
        switch action {
        case .flush(let requestComplete):
            // No promise on the common path: a promise and its callback per request show in the profile.
            context.flush()
            request.responseEnded()
            if requestComplete { requestCompleted() }
        case .flushAndClose, .ignore:
            headersTimer.cancel()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
            request.responseEnded()
            current = nil
        }
    }

    /// The upstream failed after the response began: HTTP/1.1 can only signal that by closing.
    func abortResponse(flag: ResponseFlags, details: String) {
        guard let request = current, connection.responseAborted() else { return }
        request.aborted(flag: flag, details: details)
        current = nil
        headersTimer.cancel()
        context.close(promise: nil)
    }

    // MARK: tunnel (WebSocket after a 101)

    var canTunnel: Bool { true }

    func startTunnel() {
        connection.tunnelStarted()
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
        let action = connection.tunnelClosedByUpstream()
        guard action != .none else { return }
        headersTimer.cancel()
        guard action == .logAndClose, let request = current else { return context.close(promise: nil) }
        request.tunnelClosed(by: .upstream)
        current = nil
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    func updateRecord(_ update: (inout AccessLogRecord) -> Void) {
        guard let request = current else { return }
        update(&request.record)
    }

    func setUpstreamBlocked(_ blocked: Bool) {
        connection.setUpstreamBlocked(blocked)
        if !blocked { processInbound() }
    }

    /// The request was answered and read to its end: on to the next one, or close if draining.
    private func requestCompleted() {
        current = nil
        idleTimer.activity()
        switch connection.requestCompleted(bufferedBytes: inbound.readableBytes > 0) {
        case .decode:
            processInbound()
        case .close:
            headersTimer.cancel()
            context.close(promise: nil)
        case .none:
            break
        }
    }

    private func closeConnection() {
        guard connection.close() else { return }
        headersTimer.cancel()
        context.close(promise: nil)
    }
}

extension DownstreamHandler: RateLimitWaiter {
    func stillWants(_ request: RequestContext) -> Bool { context != nil && current === request }

    func rateLimitDecided(_ dispatch: Dispatch, for request: RequestContext) {
        if readsHeldForRateLimit {
            readsHeldForRateLimit = false
            connection.setUpstreamBlocked(false)
        }
        act(on: dispatch, for: request)
        processInbound()
    }
}
