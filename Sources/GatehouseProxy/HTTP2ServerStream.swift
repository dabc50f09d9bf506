import GatehouseHTTP1
import GatehouseRouting
import GatehouseTelemetry
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream of a downstream connection: one request, routed like an HTTP/1.1 one (the head is
/// mapped onto the same shape: pseudo-headers become the request line and `Host`, cookie crumbs are
/// joined), forwarded upstream, and answered with HEADERS, DATA and trailing HEADERS. A plain object in
/// its connection's stream table (`HTTP2ConnectionHandler`), not a channel: its frames are written
/// through the connection, and its flow control is the connection's bookkeeping.
///
/// An extended CONNECT for WebSocket (RFC 8441) is bridged to an HTTP/1.1 upgrade upstream; once the
/// upstream answers 101 the stream's DATA frames and the upstream's bytes are a tunnel.
final class HTTP2ServerStream: DownstreamResponder {
    let id: HTTP2StreamID
    private unowned let connection: HTTP2ConnectionHandler
    /// The stream's request: its record, its exchange, its one log line.
    let request: RequestContext
    private var requestEnded = false
    private var responseStarted = false
    private(set) var responseEnded = false
    /// The response's last frame (END_STREAM) is out.
    private var endStreamSent = false
    /// The head of a response without a body, held for `respondEnd` to send as one frame with END_STREAM.
    private var deferredHead: HPACKHeaders?
    /// The connection reset or closed the stream: nothing more is written on it.
    private(set) var closed = false
    /// The upstream cannot take more: DATA is held (its window stays closed) until it can.
    private(set) var upstreamBlocked = false
    /// The stream is an RFC 8441 WebSocket: its DATA frames are tunnel bytes, never a request body.
    private var webSocket = false
    private var tunneling = false
    /// Tunnel bytes the client sent before the tunnel opened (RFC 8441 clients wait for the 200, so
    /// this is rare and small).
    private var earlyTunnelBytes = ByteBuffer()
    private var clientEndedTunnel = false
    /// While the request waits for the rate-limit store: what its head said, for acting on it after.
    private var waitingHead: (webSocketKey: String?, endStream: Bool)?
    private static let maxEarlyTunnelBytes = 64 * 1024

    /// The client's side of the receive window.
    var inboundWindow: HTTP2InboundWindow
    /// DATA written and not yet handed to the connection's encoder (held by the client's window).
    var pendingOutboundBytes = 0
    /// The exchange was told this stream cannot take more; it hears when it can.
    var awaitingWritable = false

    /// Streams flush upstream writes as they go: a connection's read cycle spans many streams.
    var inReadCycle: Bool { false }

    init(id: HTTP2StreamID, connection: HTTP2ConnectionHandler, runtime: ProxyRuntime, loop: LoopContext,
         inboundWindow: HTTP2InboundWindow) {
        self.id = id
        self.connection = connection
        self.inboundWindow = inboundWindow
        request = RequestContext(runtime: runtime, loop: loop, record: AccessLogRecord())
        request.record.startTimeMillis = Timestamp.nowMillis()
        request.record.protocol = "HTTP/2"
        request.record.downstreamLocalAddress = connection.localAddressText
        request.record.downstreamRemoteAddress = connection.remoteAddressText
    }

    // MARK: inbound

    func receiveHeaders(_ headers: HTTP2Frame.FramePayload.Headers, first: Bool) {
        if first {
            startRequest(headers.headers, endStream: headers.endStream)
        } else if webSocket {
            tunnelFromClient(ByteBuffer(), endStream: true)
        } else {
            // Trailers: a second HEADERS, which always ends the stream.
            endRequest(trailers: HTTPHeaderBlock(regularFieldsOf: headers.headers))
        }
        if headers.endStream { inboundWindow.peerEnded() }
    }

    /// Returns whether the bytes are held (not consumed) because the upstream cannot take them yet.
    func receiveData(_ data: HTTP2Frame.FramePayload.Data) -> Bool {
        if data.endStream { inboundWindow.peerEnded() }
        guard case .byteBuffer(let body) = data.data else { return false }
        request.record.bytesReceived += body.readableBytes
        if webSocket {
            tunnelFromClient(body, endStream: data.endStream)
        } else {
            request.forwardBody(body)
            if data.endStream { endRequest(trailers: nil) } else { request.exchange?.flushUpstream() }
        }
        return upstreamBlocked && !responseEnded
    }

    private func endRequest(trailers: HTTPHeaderBlock?) {
        guard !requestEnded else { return }
        requestEnded = true
        request.forwardEnd(trailers)
    }

    /// The stream closed (both sides ended, a reset either way, the connection gone). `reason` is nil for
    /// a clean close. Before the response ended, the client went away (or the tunnel it held closed).
    func closedByConnection() {
        closed = true
        if !responseEnded {
            responseEnded = true
            // A reset WebSocket stream is the normal end of a session.
            if tunneling { request.tunnelClosed(by: .downstream) } else { request.clientDisconnected(connectionClosed: false) }
        }
        request.releaseExchange()
    }

    func becameWritable() {
        request.exchange?.downstreamBecameWritable()
    }

    // MARK: request

    private func startRequest(_ fields: HPACKHeaders, endStream: Bool) {
        let runtime = connection.runtime
        let loop = connection.loop
        request.record.method = fields.first(name: ":method")
        request.record.path = fields.first(name: ":path")
        let settings = runtime.store.snapshot.settings
        let mapped: HTTP2MappedRequest
        do {
            mapped = try HTTP2RequestMapping.map(
                fields.lazy.map { ($0.name, $0.value) }, endStream: endStream,
                limits: HTTP1Limits(maxHeadBytes: settings.maxRequestHeaderBytes, maxHeaderCount: settings.maxRequestHeaders),
                makeWebSocketKey: { WebSocketHandshake.key(random: (loop.random.next(), loop.random.next())) })
        } catch {
            switch error {
            case .malformed(let details): return resetMalformed(details: details)
            case .tooManyHeaders, .headersTooLarge:
                runtime.record(.requestHeadersTooLarge)
                return sendLocalReply(.http2HeadersTooLarge, route: nil)
            case .connectNotServed: return sendLocalReply(.connectNotServed(details: "connect_not_supported"), route: nil)
            }
        }
        let head = mapped.head
        let host = mapped.host
        let webSocketKey = mapped.webSocketKey
        webSocket = webSocketKey != nil
        requestEnded = endStream
        let requestID = request.describe(headers: head.headers, host: host)
        let snapshot = runtime.store.snapshot
        let origin = connection.origin(snapshot: snapshot)
        let dispatch = RequestDispatcher.dispatch(head, host: host, requestID: requestID, origin: origin,
                                                  snapshot: snapshot, loop: loop,
                                                  allocator: connection.allocator, keys: runtime.jwks,
                                                  counters: loop.decisions, record: &request.record)
        act(on: dispatch, webSocketKey: webSocketKey, endStream: endStream)
    }

    /// Answers the request, forwards it, or (its rate limits in Redis) waits for the store, holding the
    /// DATA that comes meanwhile without opening the stream's window again.
    private func act(on dispatch: Dispatch, webSocketKey: String?, endStream: Bool) {
        switch dispatch {
        case .reply(let reply, let route):
            sendLocalReply(reply, route: route)
        case .forward(var forwarding):
            if let webSocketKey {
                guard forwarding.request.upgrade != nil else {
                    // The destination speaks HTTP/2, which would need an extended CONNECT upstream too.
                    sendLocalReply(.connectNotServed(details: "websocket_to_http2_upstream_not_supported"), route: nil)
                    return
                }
                forwarding.request.expectedWebSocketAccept = WebSocketHandshake.accept(forKey: webSocketKey)
            }
            let exchange = ProxyExchange(downstream: self, loop: connection.loop, runtime: connection.runtime,
                                         forwarding: forwarding)
            request.exchange = exchange
            exchange.start()
            if !forwarding.mirrors.isEmpty { request.startMirrors(forwarding.mirrors) }
            request.releaseHeldBody()
            // The upgrade request has no body: it ends with its head, the stream stays open for the tunnel.
            if endStream || webSocket { request.forwardEnd(nil) }
        case .awaitRateLimit(let pending):
            upstreamBlocked = true
            waitingHead = (webSocketKey, endStream)
            request.awaitRateLimitStore(pending, waiter: self, allocator: connection.allocator)
        }
    }

    // MARK: response

    private func write(_ payload: HTTP2Frame.FramePayload) {
        guard !closed else { return }
        connection.write(payload, on: self)
    }

    private func sendLocalReply(_ reply: LocalReply, route: Route?) {
        guard !responseStarted else {
            abortResponse(flag: reply.flag, details: reply.details)
            return
        }
        let reply = request.record.grpc ? reply.forGRPCRequest() : reply
        let headers = reply.headers(route: route)
        request.answeredLocally(reply)
        respondHead(status: reply.status, headers: headers, framing: .contentLength(Int64(reply.body.count)),
                    bodyBytes: reply.body)
        respondEnd(nil)
    }

    /// A malformed request (RFC 9113 §8.1.1): a stream error of type PROTOCOL_ERROR, logged as a
    /// downstream protocol error; nothing reaches an upstream.
    private func resetMalformed(details: String) {
        connection.runtime.record(.http2StreamError)
        responseEnded = true
        request.aborted(flag: .downstreamProtocolError, details: details)
        connection.reset(self, code: .protocolError)
    }

    func sendLocalReplyForCurrent(_ reply: LocalReply) {
        setUpstreamBlocked(false)
        sendLocalReply(reply, route: nil)
    }

    func respondHead(status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming, bodyBytes: [UInt8]) {
        guard !responseStarted else { return }
        responseStarted = true
        var status = status
        var headers = headers
        let opensTunnel = webSocket && status == 101
        if opensTunnel {
            // RFC 8441 §5: the tunnel opens with a 200 on the stream; the HTTP/1.1 handshake stays upstream.
            status = 200
            headers.remove("sec-websocket-accept")
        }
        request.record.responseCode = status
        if request.record.grpc { request.record.grpcStatus = headers.first("grpc-status") }  // a trailers-only response
        var fields = HPACKHeaders()
        fields.reserveCapacity(headers.count + 1)
        fields.add(name: ":status", value: String(status))
        connection.runtime.metrics.record(.invalidField, count: headers.appendHTTP2Fields(to: &fields))
        let noBody = bodyBytes.isEmpty && (framing == .none || framing == .contentLength(0)) && !opensTunnel
        if noBody {
            // One HEADERS frame with END_STREAM, written when the response ends: written now, it could
            // close the stream (when the client has ended its side) before the exchange finished with it.
            deferredHead = fields
            return
        }
        write(.headers(.init(headers: fields, endStream: false)))
        if !bodyBytes.isEmpty {
            var body = connection.allocator.buffer(capacity: bodyBytes.count)
            body.writeBytes(bodyBytes)
            request.record.bytesSent += bodyBytes.count
            write(.data(.init(data: .byteBuffer(body))))
        }
    }

    func respondBody(_ body: ByteBuffer) -> Bool {
        guard !endStreamSent, body.readableBytes > 0 else { return connection.isWritable(self) }
        request.record.bytesSent += body.readableBytes
        write(.data(.init(data: .byteBuffer(body))))
        return connection.isWritable(self)
    }

    func flushDownstream() { connection.flush() }

    func respondEnd(_ trailers: HTTPHeaderBlock?) {
        guard !responseEnded else { return }
        responseEnded = true
        if !endStreamSent {
            endStreamSent = true
            let trailerBlock = trailers.flatMap { $0.isEmpty ? nil : $0 }
            if let head = deferredHead {
                deferredHead = nil
                write(.headers(.init(headers: head, endStream: trailerBlock == nil)))
            } else if trailerBlock == nil {
                write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
            }
            if let trailerBlock {
                if request.record.grpc, let status = trailerBlock.first("grpc-status") { request.record.grpcStatus = status }
                write(.headers(.init(headers: trailerBlock.http2Trailers, endStream: true)))
            }
        }
        connection.flush()
        request.responseEnded()
        // Whatever the client still sends has nowhere to go: it is consumed as it comes.
        connection.consumeHeld(of: self)
    }

    /// The upstream failed after the response began: HTTP/2 resets the stream.
    func abortResponse(flag: ResponseFlags, details: String) {
        guard !responseEnded else { return }
        responseEnded = true
        request.aborted(flag: flag, details: details)
        connection.reset(self, code: .cancel)
    }

    func updateRecord(_ update: (inout AccessLogRecord) -> Void) { update(&request.record) }

    // MARK: tunnel (RFC 8441 WebSocket)

    var canTunnel: Bool { webSocket }

    func startTunnel() {
        tunneling = true
        if earlyTunnelBytes.readableBytes > 0 {
            request.exchange?.tunnelToUpstream(earlyTunnelBytes)
            earlyTunnelBytes = ByteBuffer()
        }
        if clientEndedTunnel { request.exchange?.tunnelClientEnded() }
    }

    private func tunnelFromClient(_ bytes: ByteBuffer, endStream: Bool) {
        if tunneling {
            if bytes.readableBytes > 0 { request.exchange?.tunnelToUpstream(bytes) }
        } else if bytes.readableBytes > 0 {
            var bytes = bytes
            earlyTunnelBytes.writeBuffer(&bytes)
            if earlyTunnelBytes.readableBytes > Self.maxEarlyTunnelBytes {
                return abortResponse(flag: .downstreamProtocolError, details: "websocket_data_before_tunnel")
            }
        }
        if endStream {
            clientEndedTunnel = true
            if tunneling { request.exchange?.tunnelClientEnded() }
        }
    }

    func tunnelToClient(_ bytes: ByteBuffer) -> Bool {
        request.record.bytesSent += bytes.readableBytes
        write(.data(.init(data: .byteBuffer(bytes))))
        connection.flush()
        return connection.isWritable(self)
    }

    /// The upstream closed the tunnel: END_STREAM to the client, one access-log line for the session.
    func tunnelClosed() {
        guard !responseEnded else { return }
        responseEnded = true
        if !endStreamSent {
            endStreamSent = true
            write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
            connection.flush()
        }
        request.tunnelClosed(by: .upstream)
    }

    func setUpstreamBlocked(_ blocked: Bool) {
        guard blocked != upstreamBlocked else { return }
        upstreamBlocked = blocked
        if !blocked { connection.consumeHeld(of: self) }
    }
}

extension HTTP2ServerStream: RateLimitWaiter {
    func stillWants(_ request: RequestContext) -> Bool { !closed && !responseEnded && request === self.request }

    func rateLimitDecided(_ dispatch: Dispatch, for request: RequestContext) {
        upstreamBlocked = false
        let (webSocketKey, endStream) = waitingHead ?? (nil, false)
        waitingHead = nil
        act(on: dispatch, webSocketKey: webSocketKey, endStream: endStream)
        if !upstreamBlocked { connection.consumeHeld(of: self) }
    }
}
