import GatehouseHTTP1
import GatehouseRouting
import GatehouseTelemetry
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream: one request, routed like an HTTP/1.1 one (the head is mapped onto the same
/// shape: pseudo-headers become the request line and `Host`, cookie crumbs are joined), forwarded over
/// HTTP/1.1 upstream, and answered with HEADERS, DATA and trailing HEADERS. Back-pressure: reads of the
/// stream stop while the upstream is not writable (so the client's flow-control window stays closed),
/// and upstream reads stop while the stream's window is exhausted. An extended CONNECT for WebSocket
/// (RFC 8441) is bridged to an HTTP/1.1 upgrade upstream; once the upstream answers 101 the stream's DATA
/// frames and the upstream's bytes are a tunnel.
final class HTTP2StreamHandler: ChannelDuplexHandler, DownstreamResponder {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let runtime: ProxyRuntime
    private let loop: LoopContext
    private let listenerPort: Int
    private let tls: DownstreamTLS?
    private var context: ChannelHandlerContext!
    /// The stream's request: its record, its exchange, its one log line.
    private let request: RequestContext
    private var headReceived = false
    private var requestEnded = false
    private var responseStarted = false
    private var responseEnded = false
    /// The response's last frame (END_STREAM) is out.
    private var endStreamSent = false
    private var upstreamBlocked = false
    private var readPending = false
    /// The stream is an RFC 8441 WebSocket: its DATA frames are tunnel bytes, never a request body.
    private var webSocket = false
    private var tunneling = false
    /// Tunnel bytes the client sent before the tunnel opened (RFC 8441 clients wait for the 200, so
    /// this is rare and small).
    private var earlyTunnelBytes = ByteBuffer()
    private var clientEndedTunnel = false
    private static let maxEarlyTunnelBytes = 64 * 1024
    /// Streams flush upstream writes as they go: the multiplexer does not promise every stream a
    /// read-complete after its frames, and a write left unflushed would stall the exchange.
    var inReadCycle: Bool { false }

    init(runtime: ProxyRuntime, loop: LoopContext, listenerPort: Int, tls: DownstreamTLS?) {
        self.runtime = runtime
        self.loop = loop
        self.listenerPort = listenerPort
        self.tls = tls
        request = RequestContext(runtime: runtime, loop: loop, record: AccessLogRecord())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        request.record.startTimeMillis = Timestamp.nowMillis()
        request.record.protocol = "HTTP/2"
        let connection = context.channel.parent
        request.record.downstreamLocalAddress = connection?.localAddress.map(SocketAddressText.describe)
        request.record.downstreamRemoteAddress = connection?.remoteAddress.map(SocketAddressText.describe)
    }

    /// The context holds this handler: dropping it here breaks the cycle once the stream is gone.
    func handlerRemoved(context: ChannelHandlerContext) {
        request.releaseExchange()
        self.context = nil
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if !headReceived {
                headReceived = true
                startRequest(headers.headers, endStream: headers.endStream)
            } else if webSocket {
                tunnelFromClient(ByteBuffer(), endStream: true)
            } else {
                // Trailers: a second HEADERS, which always ends the stream.
                endRequest(trailers: Self.block(headers.headers, skippingPseudo: true))
            }
        case .data(let data):
            guard case .byteBuffer(let body) = data.data else { break }
            request.record.bytesReceived += body.readableBytes
            if webSocket {
                tunnelFromClient(body, endStream: data.endStream)
                break
            }
            request.exchange?.requestBody(body)
            if data.endStream { endRequest(trailers: nil) } else { request.exchange?.flushUpstream() }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        request.exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    private func endRequest(trailers: HTTPHeaderBlock?) {
        guard !requestEnded else { return }
        requestEnded = true
        request.exchange?.requestEnd(trailers)
    }

    func read(context: ChannelHandlerContext) {
        if upstreamBlocked { readPending = true } else { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { request.exchange?.downstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client reset the stream, or the connection went away, before the response ended.
        if !responseEnded {
            responseEnded = true
            // A reset WebSocket stream is the normal end of a session.
            if tunneling { request.tunnelClosed(by: .downstream) } else { request.clientDisconnected(connectionClosed: false) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: request

    private func startRequest(_ fields: HPACKHeaders, endStream: Bool) {
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
        let headers = head.headers
        let host = mapped.host
        let webSocketKey = mapped.webSocketKey
        webSocket = webSocketKey != nil
        requestEnded = endStream
        let requestID = request.describe(headers: headers, host: host)
        let snapshot = runtime.store.snapshot
        // The local address is formatted per stream only when a policy could ask for destination.ip.
        let policed = snapshot.listener(port: listenerPort).map { !$0.authorization.isEmpty } ?? false
        let origin = DownstreamOrigin(listenerPort: listenerPort, tls: tls,
                                      clientIP: context.channel.parent?.remoteAddress?.ipAddress,
                                      localIP: policed ? context.channel.parent?.localAddress?.ipAddress : nil)
        let dispatch = RequestDispatcher.dispatch(head, host: host, requestID: requestID, origin: origin,
                                                  snapshot: snapshot, loop: loop,
                                                  allocator: context.channel.allocator, keys: runtime.jwks,
                                                  counters: loop.decisions, record: &request.record)
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
            let exchange = ProxyExchange(downstream: self, loop: loop, runtime: runtime, forwarding: forwarding)
            request.exchange = exchange
            exchange.start()
            // The upgrade request has no body: it ends with its head, the stream stays open for the tunnel.
            if endStream || webSocket { exchange.requestEnd(nil) }
        }
    }

    // MARK: response

    private func sendLocalReply(_ reply: LocalReply, route: Route?) {
        guard !responseStarted else {
            abortResponse(flag: reply.flag, details: reply.details)
            return
        }
        let headers = reply.headers(route: route)
        request.answeredLocally(reply)
        respondHead(status: reply.status, headers: headers, framing: .contentLength(Int64(reply.body.count)),
                    bodyBytes: reply.body)
        respondEnd(nil)
    }

    /// A malformed request (RFC 9113 §8.1.1): a stream error of type PROTOCOL_ERROR, logged as a
    /// downstream protocol error; nothing reaches an upstream.
    private func resetMalformed(details: String) {
        runtime.record(.http2StreamError)
        responseEnded = true
        request.aborted(flag: .downstreamProtocolError, details: details)
        context.writeAndFlush(wrapOutboundOut(.rstStream(.protocolError)), promise: nil)
        context.close(promise: nil)
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
        runtime.metrics.record(.invalidField, count: headers.appendHTTP2Fields(to: &fields))
        let noBody = bodyBytes.isEmpty && (framing == .none || framing == .contentLength(0)) && !opensTunnel
        context.write(wrapOutboundOut(.headers(.init(headers: fields, endStream: noBody))), promise: nil)
        endStreamSent = noBody
        if !bodyBytes.isEmpty {
            var body = context.channel.allocator.buffer(capacity: bodyBytes.count)
            body.writeBytes(bodyBytes)
            request.record.bytesSent += bodyBytes.count
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(body)))), promise: nil)
        }
    }

    func respondBody(_ body: ByteBuffer) -> Bool {
        guard !endStreamSent, body.readableBytes > 0 else { return context.channel.isWritable }
        request.record.bytesSent += body.readableBytes
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(body)))), promise: nil)
        return context.channel.isWritable
    }

    func flushDownstream() { context.flush() }

    func respondEnd(_ trailers: HTTPHeaderBlock?) {
        guard !responseEnded else { return }
        responseEnded = true
        if !endStreamSent {
            endStreamSent = true
            if let trailers, !trailers.isEmpty {
                if request.record.grpc, let status = trailers.first("grpc-status") { request.record.grpcStatus = status }
                context.write(wrapOutboundOut(.headers(.init(headers: trailers.http2Trailers, endStream: true))),
                              promise: nil)
            } else {
                context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
            }
        }
        context.flush()
        request.responseEnded()
    }

    /// The upstream failed after the response began: HTTP/2 resets the stream.
    func abortResponse(flag: ResponseFlags, details: String) {
        guard !responseEnded else { return }
        responseEnded = true
        request.aborted(flag: flag, details: details)
        context.close(promise: nil)
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
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: nil)
        return context.channel.isWritable
    }

    /// The upstream closed the tunnel: END_STREAM to the client, one access-log line for the session.
    func tunnelClosed() {
        guard !responseEnded else { return }
        responseEnded = true
        if !endStreamSent {
            endStreamSent = true
            context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))),
                                  promise: nil)
        }
        request.tunnelClosed(by: .upstream)
    }

    func setUpstreamBlocked(_ blocked: Bool) {
        upstreamBlocked = blocked
        if !blocked, readPending {
            readPending = false
            context.read()
        }
    }

    /// Regular fields of an HPACK block as a header block (trailers).
    static func block(_ fields: HPACKHeaders, skippingPseudo: Bool) -> HTTPHeaderBlock {
        var block = HTTPHeaderBlock()
        for (name, value, _) in fields where !(skippingPseudo && name.hasPrefix(":")) { block.add(name, value) }
        return block
    }
}
