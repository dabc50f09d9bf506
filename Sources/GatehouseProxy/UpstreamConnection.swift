import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the request using it. Everything runs on one event loop.
protocol UpstreamResponseReceiver: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPHeaders?)
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// One HTTP/1.1 connection to an upstream endpoint. It serves one request at a time and goes back to
/// its loop's pool between requests.
final class UpstreamConnection {
    let channel: Channel
    let poolKey: String
    let localAddress: String?
    let handler: UpstreamHandler
    var requestsServed = 0
    var idleSince: NIODeadline = .now()

    init(channel: Channel, handler: UpstreamHandler, poolKey: String) {
        self.channel = channel
        self.handler = handler
        self.poolKey = poolKey
        localAddress = channel.localAddress.map(SocketAddressText.describe)
    }

    var isUsable: Bool { channel.isActive && !handler.closed }
    var isWritable: Bool { channel.isWritable }

    func attach(_ receiver: UpstreamResponseReceiver) { handler.receiver = receiver }
    func detach() {
        handler.receiver = nil
        handler.resumeReads()
    }

    func write(_ part: HTTPClientRequestPart) { handler.write(part) }
    func flush() { handler.flush() }
    func pauseReads() { handler.readsPaused = true }
    func resumeReads() { handler.resumeReads() }
    func close() { channel.close(promise: nil) }
}

/// The pipeline end of an upstream connection: hands response parts to the current receiver and
/// applies back-pressure by holding `read` while the downstream side cannot take more.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var receiver: UpstreamResponseReceiver?
    var onIdleClose: (() -> Void)?
    private var context: ChannelHandlerContext?
    private var readPending = false
    var readsPaused = false {
        didSet { if !readsPaused, readPending { readPending = false; context?.read() } }
    }
    private(set) var closed = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ part: HTTPClientRequestPart) { context?.write(wrapOutboundOut(part), promise: nil) }
    func flush() { context?.flush() }
    func resumeReads() { readsPaused = false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let receiver else {
            // Bytes on an idle connection are a protocol violation by the upstream: never reuse it.
            closed = true
            context.close(promise: nil)
            return
        }
        switch part {
        case .head(let head): receiver.upstreamResponseHead(head)
        case .body(let body): receiver.upstreamResponseBody(body)
        case .end(let trailers): receiver.upstreamResponseEnd(trailers)
        }
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
        if let receiver {
            self.receiver = nil
            receiver.upstreamClosed()
        } else {
            onIdleClose?()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A parse error or reset: the connection is unusable; channelInactive reports it.
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
