import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore

/// One copy of a request sent to a VirtualService `mirror` (Envoy's shadow): forwarded like any
/// request by its own `ProxyExchange`, its response read and dropped. Fire and forget: it never holds
/// the client's reads, never delays the response, writes no access-log line, and is given up rather
/// than waited for when it falls behind (more than `maxHeldBytes` of body while it cannot send).
///
/// It stands in for the client side of its exchange, and keeps itself alive until that exchange ends:
/// a mirror whose request had ended when the client's response did runs on to its own end.
final class MirrorExchange: DownstreamResponder {
    /// Body a mirror may hold while its attempt cannot take it (connecting, or its upstream slow).
    static let maxHeldBytes = 64 * 1024

    private var exchange: ProxyExchange?
    /// Itself while its exchange runs: nothing else need hold a mirror the client's request outlived.
    private var running: MirrorExchange?
    private let eventLoop: EventLoop
    private var blocked = false
    private var heldBytes = 0
    private(set) var requestEnded = false
    private var scratch = AccessLogRecord()

    /// Starts the copy's exchange at once (its connect races the main request's).
    init(loop: LoopContext, runtime: ProxyRuntime, forwarding: Dispatch.Forwarding) {
        eventLoop = loop.eventLoop
        let exchange = ProxyExchange(downstream: self, loop: loop, runtime: runtime, forwarding: forwarding)
        self.exchange = exchange
        running = self
        exchange.start()
    }

    func requestBody(_ body: ByteBuffer) {
        guard let exchange else { return }
        if blocked {
            heldBytes += body.readableBytes
            if heldBytes > Self.maxHeldBytes { return giveUp() }
        }
        exchange.requestBody(body)
        // The main exchange's writes wait for the flush at the end of the client's read; a copy's do not.
        exchange.flushUpstream()
    }

    func requestEnd(_ trailers: HTTPHeaderBlock?) {
        requestEnded = true
        exchange?.requestEnd(trailers)
    }

    /// The client's request is over: a copy still missing part of the request can never complete, so
    /// it is given up; one that has it all runs on.
    func clientRequestFinished() {
        if !requestEnded { giveUp() }
    }

    private func giveUp() {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.abandon()
        release()
    }

    private func done() {
        exchange = nil
        release()
    }

    /// Lets go of itself once the call that ended it has returned: its exchange holds it unowned and
    /// may still be on the stack.
    private func release() {
        guard let running else { return }
        self.running = nil
        eventLoop.assumeIsolated().execute { _ = running }
    }

    // MARK: DownstreamResponder: the response goes nowhere

    var canTunnel: Bool { false }
    func startTunnel() {}
    func tunnelToClient(_ bytes: ByteBuffer) -> Bool { true }
    func tunnelClosed() { done() }
    /// Not inside the client's read cycle as the main exchange is: the copy flushes its own writes.
    var inReadCycle: Bool { false }
    func respondHead(status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming, bodyBytes: [UInt8]) {}
    func respondBody(_ body: ByteBuffer) -> Bool { true }
    func flushDownstream() {}
    func respondEnd(_ trailers: HTTPHeaderBlock?) { done() }
    func abortResponse(flag: ResponseFlags, details: String) { done() }
    func updateRecord(_ update: (inout AccessLogRecord) -> Void) { update(&scratch) }

    func setUpstreamBlocked(_ blocked: Bool) {
        self.blocked = blocked
        if !blocked { heldBytes = 0 }
    }

    func sendLocalReplyForCurrent(_ reply: LocalReply) { done() }
}
