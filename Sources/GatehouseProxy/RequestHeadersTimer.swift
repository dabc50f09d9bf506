import NIOCore

/// Fired through the pipeline when a request's headers did not arrive in time.
struct RequestHeadersTimedOut {}

/// Sits in front of the HTTP decoder and starts the request-headers timer at the first byte of a request
/// (Envoy's `request_headers_timeout`): a client that opens a request and dribbles its headers gets 408.
/// An idle keep-alive connection with no bytes is not timed by this.
final class RequestHeadersTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var waitingForHead = true
    private var bytesSinceHead = false
    private var task: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        task?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if waitingForHead { bytesSinceHead = true }
        context.fireChannelRead(data)
    }

    /// The timer is armed only when a read ends with a head still incomplete: a head that arrives in
    /// one read (nearly all of them) never costs a timer.
    func channelReadComplete(context: ChannelHandlerContext) {
        if waitingForHead, bytesSinceHead, task == nil, timeout > .zero {
            task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in self?.fire() }
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    /// Called by the request handler once the head is parsed.
    func headReceived() {
        waitingForHead = false
        bytesSinceHead = false
        task?.cancel()
        task = nil
    }

    /// Called when the connection waits for its next request.
    func awaitNextRequest() { waitingForHead = true }

    private func fire() {
        task = nil
        guard waitingForHead, let context else { return }
        context.fireUserInboundEventTriggered(RequestHeadersTimedOut())
    }
}
