import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOHTTP2

/// Serves the streams of one downstream HTTP/2 connection from one handler, over NIO's HTTP/2 frame
/// layer (`NIOHTTP2Handler` with no multiplexer): a table of `HTTP2ServerStream`s, no channel per stream.
/// NIO keeps the protocol's state and its limits (CONTINUATION floods, rapid resets, header list size);
/// this handler does what its stream multiplexer did, for a fraction of the cost:
///
/// - **Receive windows.** NIO never sends WINDOW_UPDATE. The connection's window is opened again as bytes
///   arrive; a stream's as its bytes are consumed, so a stream whose upstream is slow holds its own
///   client back and no other (`HTTP2InboundWindow`).
/// - **Send back-pressure.** NIO buffers DATA past the client's window without limit, so each stream
///   counts what it wrote until NIO encodes it (`wroteFrame`) and reports itself unwritable past a
///   watermark; its exchange then stops reading the upstream.
/// - **Concurrent streams.** A stream over `limits.maxConcurrentStreams` is refused with REFUSED_STREAM,
///   a stream error (RFC 9113 §5.1.2), not the connection error NIO would make it
///   (`HTTP2PrefaceSettings`). Refusals past a rate are a flood, and cost the connection.
/// - **Drain.** On quiesce: a GOAWAY naming the last stream taken; the connection closes when its
///   streams are done.
/// - **Idle timeout.** A connection with no open stream and no frame either way for `limits.idleTimeout`
///   is closed (Envoy's `idle_timeout`: open streams keep a connection, as an HTTP/1.1 request in
///   flight does). One timer per idle period, not a promise per write.
///
/// Everything runs on the connection's event loop.
final class HTTP2ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// NIO's defaults for a stream channel's send buffer: past the high mark a stream is unwritable,
    /// below the low mark writable again.
    static let outboundHighWatermark = 8192
    static let outboundLowWatermark = 4096
    /// NIO's default initial window (none is advertised): the target both windows are kept at.
    static let windowTarget = 65_535
    /// Refusals allowed per `refusalWindow` before the connection is a flood.
    static let maxRefusals = 200
    static let refusalWindow = TimeAmount.seconds(30)

    let runtime: ProxyRuntime
    let loop: LoopContext
    private let listenerPort: Int
    private let tls: DownstreamTLS?
    private let maxConcurrentStreams: Int
    private let idleTimeout: TimeAmount?
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?

    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2ServerStream] = [:]
    /// The highest stream the gateway took (named in a drain's GOAWAY).
    private var lastStreamID = HTTP2StreamID.rootStream
    /// The highest stream the client opened, refused ones included: a HEADERS for a lower unknown stream
    /// is never a new request.
    private var highestOpenedStreamID = HTTP2StreamID.rootStream
    private var connectionWindow = HTTP2InboundWindow(target: HTTP2ConnectionHandler.windowTarget)
    private var draining = false
    private var refusals = 0
    private var refusalWindowStart = NIODeadline.now()
    /// Streams waiting for the channel to become writable again.
    private var waitingForChannel = false

    private(set) var localAddressText: String?
    private(set) var remoteAddressText: String?
    private var remoteIP: String?
    private var localIP: String?

    /// Hands NIO's "frame encoded" notifications to the handler without NIO owning it.
    let frameDelegate: FrameDelegate

    init(runtime: ProxyRuntime, loop: LoopContext, listenerPort: Int, tls: DownstreamTLS?, maxConcurrentStreams: Int,
         idleTimeout: TimeAmount?) {
        self.runtime = runtime
        self.idleTimeout = idleTimeout
        self.loop = loop
        self.listenerPort = listenerPort
        self.tls = tls
        self.maxConcurrentStreams = maxConcurrentStreams
        frameDelegate = FrameDelegate()
        frameDelegate.handler = self
    }

    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    /// Where requests on this connection come from. The local address is read only when a policy on the
    /// port could ask for `destination.ip`.
    func origin(snapshot: Snapshot) -> DownstreamOrigin {
        let policed = snapshot.listener(port: listenerPort).map { !$0.authorization.isEmpty } ?? false
        return DownstreamOrigin(listenerPort: listenerPort, tls: tls, clientIP: remoteIP, localIP: policed ? localIP : nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        localAddressText = channel.localAddress.map(SocketAddressText.describe)
        remoteAddressText = channel.remoteAddress.map(SocketAddressText.describe)
        remoteIP = channel.remoteAddress?.ipAddress
        localIP = channel.localAddress?.ipAddress
        lastActivity = .now()
        armIdleTimer(context)
    }

    private func armIdleTimer(_ context: ChannelHandlerContext) {
        guard let idleTimeout else { return }
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: lastActivity + idleTimeout) { [weak self] in
            self?.idleTimerFired()
        }
    }

    private func idleTimerFired() {
        guard let context, let idleTimeout else { return }
        // A stream waiting on a slow upstream is not idleness: the period starts again.
        if !streams.isEmpty { lastActivity = .now() }
        guard NIODeadline.now() - lastActivity >= idleTimeout else { return armIdleTimer(context) }
        runtime.metrics.record(.idleTimeout)
        context.close(promise: nil)
    }

    /// The context holds this handler: dropping it (and every stream's exchange) breaks the cycle.
    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        closeAllStreams()
        frameDelegate.handler = nil
        self.context = nil
    }

    // MARK: inbound frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = streams[frame.streamID] {
                stream.receiveHeaders(headers, first: false)
            } else {
                openStream(frame.streamID, headers: headers)
            }
        case .data(let data):
            // A stream refused or already answered and reset is unknown here; NIO counted its bytes
            // against the connection window, which is opened again as usual.
            guard let stream = streams[frame.streamID] else { return }
            let bytes = data.data.readableBytes
            if stream.receiveData(data) { stream.inboundWindow.held(bytes) }
        default:
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, RST_STREAM, GOAWAY: NIO's; a reset arrives as a
            // StreamClosedEvent.
            break
        }
    }

    private func openStream(_ id: HTTP2StreamID, headers: HTTP2Frame.FramePayload.Headers) {
        guard !draining, id > highestOpenedStreamID else { return }
        highestOpenedStreamID = id
        if streams.count >= maxConcurrentStreams { return refuse(id) }
        lastStreamID = max(lastStreamID, id)
        let stream = HTTP2ServerStream(id: id, connection: self, runtime: runtime, loop: loop,
                                       inboundWindow: HTTP2InboundWindow(target: Self.windowTarget))
        streams[id] = stream
        stream.receiveHeaders(headers, first: true)
    }

    /// RFC 9113 §5.1.2: a stream over the limit is a stream error. REFUSED_STREAM says it was not
    /// processed, so the client may retry it; nothing about it is logged but the count.
    private func refuse(_ id: HTTP2StreamID) {
        guard let context else { return }
        let now = NIODeadline.now()
        if now - refusalWindowStart > Self.refusalWindow {
            refusalWindowStart = now
            refusals = 0
        }
        refusals += 1
        if refusals > Self.maxRefusals {
            // A client that keeps opening streams past the limit is probing for the reset-flood kind of
            // attack: it loses the connection, as a rapid-reset flood does.
            runtime.record(.http2Flood)
            let goAway = HTTP2Frame(streamID: .rootStream,
                                    payload: .goAway(lastStreamID: lastStreamID, errorCode: .enhanceYourCalm, opaqueData: nil))
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        runtime.record(.http2RefusedStream)
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.refusedStream))), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let updated as NIOHTTP2WindowUpdatedEvent:
            guard let window = updated.inboundWindowSize else { return }
            if updated.streamID == .rootStream {
                if let increment = connectionWindow.windowChanged(to: window) { sendWindowUpdate(.rootStream, increment) }
            } else if let stream = streams[updated.streamID],
                      let increment = stream.inboundWindow.windowChanged(to: window) {
                sendWindowUpdate(stream.id, increment)
            }
        case let closed as StreamClosedEvent:
            guard let stream = streams.removeValue(forKey: closed.streamID) else { return }
            stream.closedByConnection()
            if draining, streams.isEmpty { closeAfterWrites(context) }
        case is ChannelShouldQuiesceEvent:
            quiesce(context)
            context.fireUserInboundEventTriggered(event)
        case is NIOHTTP2StreamCreatedEvent, is NIOHTTP2BulkStreamWindowChangeEvent:
            // The gateway advertises no initial window of its own: streams start at the default, and a
            // SETTINGS ACK changes nothing here.
            break
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func sendWindowUpdate(_ id: HTTP2StreamID, _ increment: Int) {
        guard let context else { return }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))),
                      promise: nil)
        // Inside a read, NIO flushes at read-complete; a consumption after an upstream write is not.
        context.flush()
    }

    /// Drain (SIGTERM) or a removed listener: a GOAWAY naming the last stream taken, so the client opens
    /// no more here; the streams in flight finish, then the connection closes.
    private func quiesce(_ context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        if streams.isEmpty {
            closeAfterWrites(context)
        } else {
            context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
        }
    }

    private var goAway: HTTP2Frame {
        HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
    }

    /// A (final) GOAWAY, and the close once it is written: writes complete in order, so the last
    /// responses went out before it.
    private func closeAfterWrites(_ context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        // NIO reports no stream closures when the connection goes: every stream still open lost its client.
        closeAllStreams()
        context.fireChannelInactive()
    }

    private func closeAllStreams() {
        let open = streams
        streams.removeAll()
        for stream in open.values { stream.closedByConnection() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch error {
        case let streamError as NIOHTTP2Errors.StreamError:
            // A frame the gateway wrote was refused for its stream (an upstream header block NIO will not
            // send, say). NIO sends no reset for it: the stream is reset here, the connection goes on.
            if let stream = streams[streamError.streamID] {
                stream.abortResponse(flag: .upstreamProtocolError, details: "upstream_reset_after_response_started{protocol_error}")
                reset(stream, code: .internalError)
            }
        case is NIOHTTP2Errors.NoSuchStream, is NIOHTTP2Errors.StreamClosed:
            // A write raced the stream's close (a reset by the client): nothing to do.
            break
        default:
            context.fireErrorCaught(error)
        }
    }

    // MARK: writing, for the streams

    func write(_ payload: HTTP2Frame.FramePayload, on stream: HTTP2ServerStream) {
        guard let context else { return }
        lastActivity = .now()
        if case .data(let data) = payload { stream.pendingOutboundBytes += data.data.readableBytes }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream.id, payload: payload)), promise: nil)
    }

    func flush() { context?.flush() }

    func isWritable(_ stream: HTTP2ServerStream) -> Bool {
        let writable = stream.pendingOutboundBytes < Self.outboundHighWatermark && (context?.channel.isWritable ?? false)
        if !writable {
            stream.awaitingWritable = true
            if context?.channel.isWritable == false { waitingForChannel = true }
        }
        return writable
    }

    /// Resets a stream. NIO reports its close (StreamClosedEvent) from inside the write, so the stream is
    /// marked first; a stream already gone is not reset again (a reset never answers a reset).
    func reset(_ stream: HTTP2ServerStream, code: HTTP2ErrorCode) {
        guard let context, streams[stream.id] === stream, !stream.closed else { return }
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: stream.id, payload: .rstStream(code))), promise: nil)
    }

    /// The stream's held DATA was consumed (its upstream can take more, or its response ended): open its
    /// window by that much.
    func consumeHeld(of stream: HTTP2ServerStream) {
        guard streams[stream.id] === stream, let increment = stream.inboundWindow.consumedAll() else { return }
        sendWindowUpdate(stream.id, increment)
    }

    /// NIO encoded a frame: it left the send buffer (the client's window allowed it).
    fileprivate func wroteFrame(_ frame: HTTP2Frame) {
        guard case .data(let data) = frame.payload, let stream = streams[frame.streamID] else { return }
        stream.pendingOutboundBytes -= data.data.readableBytes
        if stream.awaitingWritable, stream.pendingOutboundBytes <= Self.outboundLowWatermark,
           context?.channel.isWritable == true {
            stream.awaitingWritable = false
            stream.becameWritable()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, waitingForChannel {
            waitingForChannel = false
            for stream in streams.values where stream.awaitingWritable
                && stream.pendingOutboundBytes <= Self.outboundLowWatermark {
                stream.awaitingWritable = false
                stream.becameWritable()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// NIO holds its frame delegate strongly for the connection's life; this indirection keeps it from
    /// holding the handler (and, through it, every stream) once the handler left the pipeline.
    final class FrameDelegate: NIOHTTP2FrameDelegate {
        weak var handler: HTTP2ConnectionHandler?
        func wroteFrame(_ frame: HTTP2Frame) { handler?.wroteFrame(frame) }
    }
}
