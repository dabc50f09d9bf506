import GatehouseHTTP1
import NIOCore

/// What an upstream connection reports to the request using it. Everything runs on one event loop.
protocol UpstreamResponseReceiver: AnyObject {
    func upstreamResponseHead(_ head: HTTP1ResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPHeaderBlock?)
    func upstreamReadComplete()
    /// The upstream sent something that is not HTTP/1.1.
    func upstreamProtocolError()
    func upstreamClosed()
    /// An HTTP/2 upstream refused the stream (RST_STREAM REFUSED_STREAM): it processed nothing.
    func upstreamRefusedStream()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// Raw bytes from an upstream that switched protocols (a WebSocket tunnel).
    func upstreamTunnelData(_ bytes: ByteBuffer)
}

/// One HTTP/1.1 connection to an upstream endpoint. It serves one request at a time and goes back to
/// its loop's pool between requests.
final class UpstreamConnection {
    let channel: Channel
    let poolKey: PoolKey
    let localAddress: String?
    let handler: UpstreamHandler
    var requestsServed = 0
    var idleSince: NIODeadline = .now()
    /// In its pool's idle stack, unused since `idleSince`.
    var isIdle = false
    /// The idle-timeout check, re-armed once per period while the connection lives.
    var idleTask: Scheduled<Void>?
    /// When the connection was made (DestinationRule `maxConnectionDuration` counts from here).
    let createdAt = NIODeadline.now()

    init(channel: Channel, handler: UpstreamHandler, poolKey: PoolKey) {
        self.channel = channel
        self.handler = handler
        self.poolKey = poolKey
        localAddress = channel.localAddress.map(SocketAddressText.describe)
    }

    var isUsable: Bool { channel.isActive && !handler.closed }
    var isWritable: Bool { channel.isWritable }

    /// Starts an exchange: responses now go to `receiver`.
    func attach(_ receiver: UpstreamResponseReceiver, requestIsHEAD: Bool) {
        handler.receiver = receiver
        handler.decoder.requestIsHEAD = requestIsHEAD
    }

    func detach() {
        handler.receiver = nil
        handler.resumeReads()
    }

    func write(_ bytes: ByteBuffer) { handler.write(bytes) }
    /// After a 101: stop decoding HTTP and pass the bytes through.
    func startTunnel() { handler.startTunnel() }
    func flush() { handler.flush() }
    func pauseReads() { handler.readsPaused = true }
    func resumeReads() { handler.resumeReads() }
    func close() { channel.close(promise: nil) }
    /// The client ended its side of a tunnel: end ours (TCP half-close), or close if that fails.
    func closeOutput() {
        let channel = self.channel
        channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
    }
}

/// The only handler of an upstream connection: decodes responses from the bytes and hands them to the
/// current receiver, and applies back-pressure by holding `read` while the downstream cannot take more.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var receiver: UpstreamResponseReceiver?
    var onIdleClose: (() -> Void)?
    var decoder: HTTP1ResponseDecoder
    private var inbound = ByteBuffer()
    private var context: ChannelHandlerContext?
    private var readPending = false
    var readsPaused = false {
        didSet { if !readsPaused, readPending { readPending = false; context?.read() } }
    }
    private(set) var closed = false
    private var tunneling = false

    init(limits: HTTP1Limits) { decoder = HTTP1ResponseDecoder(limits: limits) }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }
    func flush() { context?.flush() }
    func resumeReads() { readsPaused = false }

    func startTunnel() {
        tunneling = true
        // Whatever followed the 101 in the same read already belongs to the tunnel.
        if inbound.readableBytes > 0, let receiver {
            let rest = inbound
            inbound = ByteBuffer()
            receiver.upstreamTunnelData(rest)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if tunneling {
            receiver?.upstreamTunnelData(bytes)
            return
        }
        guard receiver != nil else {
            // Bytes on an idle connection are a protocol violation by the upstream: never reuse it.
            fail(context)
            return
        }
        if inbound.readableBytes == 0 { inbound = bytes } else { inbound.writeBuffer(&bytes) }
        do {
            while !tunneling, let receiver, let event = try decoder.next(&inbound) {
                switch event {
                case .head(let head): receiver.upstreamResponseHead(head)
                case .body(let body): receiver.upstreamResponseBody(body)
                case .end(let trailers): receiver.upstreamResponseEnd(trailers)
                }
            }
        } catch {
            let receiver = self.receiver
            self.receiver = nil
            fail(context)
            receiver?.upstreamProtocolError()
            return
        }
        // Anything after the response, before the next request, is not HTTP we can use.
        if !tunneling, receiver == nil, inbound.readableBytes > 0 { fail(context) }
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
        closed = true
        // A response without a length ends with the connection.
        if let receiver, case .end(let trailers)? = decoder.endOfInput() {
            self.receiver = nil
            receiver.upstreamResponseEnd(trailers)
        }
        if let receiver {
            self.receiver = nil
            receiver.upstreamClosed()
        } else {
            onIdleClose?()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or other I/O error: the connection is unusable; channelInactive reports it.
        fail(context)
    }

    private func fail(_ context: ChannelHandlerContext) {
        closed = true
        context.close(promise: nil)
    }
}

enum SocketAddressText {
    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
