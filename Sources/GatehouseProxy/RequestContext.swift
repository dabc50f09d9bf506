import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore

/// What every downstream request does whatever protocol carried it: its access-log record and timing,
/// the upstream exchange serving it, and the ways it can end (answered, answered locally, aborted, the
/// client gone, a tunnel closed), each logged exactly once. `DownstreamHandler` (HTTP/1.1) and
/// `HTTP2ServerStream` only write their protocol's frames around it.
final class RequestContext {
    /// Filled in place: a copy handed around would be copied field by field.
    var record: AccessLogRecord
    var exchange: ProxyExchange?
    /// Copies of the request to VirtualService mirrors, fed the same body.
    private var mirrors: [MirrorExchange] = []
    private(set) var startedAt: NIODeadline
    /// The request's line is written: nothing about it is logged again.
    private(set) var logged = false
    private let runtime: ProxyRuntime
    private let loop: LoopContext

    init(runtime: ProxyRuntime, loop: LoopContext, record: AccessLogRecord) {
        self.runtime = runtime
        self.loop = loop
        self.record = record
        startedAt = .now()
    }

    /// The fields every protocol takes from the request's head. Returns the request id: the client's, or
    /// a new one when it sent none (or an empty one).
    func describe(headers: HTTPHeaderBlock, host: String?) -> String {
        let requestID = headers.first(role: .requestID).flatMap { $0.isEmpty ? nil : $0 }
            ?? RequestID.generate(using: &loop.random)
        record.userAgent = headers.first(role: .userAgent)
        record.xForwardedFor = headers.first(role: .forwardedFor)
        record.authority = host
        record.requestID = requestID
        return requestID
    }

    /// Starts the copies of the request the route's mirrors drew.
    func startMirrors(_ forwardings: [Dispatch.Forwarding]) {
        for forwarding in forwardings { mirrors.append(MirrorExchange(loop: loop, runtime: runtime, forwarding: forwarding)) }
    }

    /// Request body for the exchange and every mirror.
    func forwardBody(_ body: ByteBuffer) {
        if heldBody != nil { heldBody!.append(body); return }
        exchange?.requestBody(body)
        for mirror in mirrors { mirror.requestBody(body) }
    }

    /// The request's end, for the exchange and every mirror.
    func forwardEnd(_ trailers: HTTPHeaderBlock?) {
        if heldBody != nil { heldEnd = .some(trailers); return }
        exchange?.requestEnd(trailers)
        for mirror in mirrors { mirror.requestEnd(trailers) }
    }

    /// Body that came while the request waited for its rate-limit store, and its end; nil when not
    /// holding. Bounded by the protocol: HTTP/1.1 decodes no body meanwhile (only a bodiless request's
    /// end is held), HTTP/2 holds what the stream's window allows, not opened again until it moves on.
    private var heldBody: [ByteBuffer]?
    private var heldEnd: HTTPHeaderBlock??

    /// Waits for the `redis` store's answer to `pending`, holding what the request sends meanwhile, then
    /// finishes the dispatch and hands the result to `waiter` (while it still wants the request: the
    /// client may have gone meanwhile).
    func awaitRateLimitStore(_ pending: PendingDispatch, waiter: any RateLimitWaiter, allocator: ByteBufferAllocator) {
        guard let store = loop.redisStore else { preconditionFailure("only the redis store suspends a request") }
        holdBody()
        rateLimitWaiter = (waiter, allocator)
        pending.wait(self, store: store)
    }

    /// Who waits for the rate-limit store, and the allocator to finish the dispatch with.
    private var rateLimitWaiter: (waiter: any RateLimitWaiter, allocator: ByteBufferAllocator)?

    /// The store answered `pending` (or could not, and `failureMode` decides).
    func rateLimitStoreAnswered(_ pending: PendingDispatch, outcome: RedisTakeOutcome) {
        guard let (waiter, allocator) = rateLimitWaiter else { return }
        rateLimitWaiter = nil
        guard waiter.stillWants(self) else { return }
        waiter.rateLimitDecided(RequestDispatcher.resume(pending, outcome: outcome, loop: loop, allocator: allocator,
                                                         counters: loop.decisions, record: &record), for: self)
        releaseHeldBody()
    }

    /// Keeps the body from here on, until `releaseHeldBody`.
    func holdBody() {
        if heldBody == nil { heldBody = [] }
    }

    /// Hands what was held to the exchange and mirrors, if any (a request answered locally drops it).
    func releaseHeldBody() {
        guard let held = heldBody else { return }
        heldBody = nil
        for body in held { forwardBody(body) }
        if let end = heldEnd {
            heldEnd = nil
            forwardEnd(end)
        }
    }

    /// The upstream side is no longer wanted: the exchange holds its responder unowned, so it must never
    /// call back once dropped.
    func releaseExchange() {
        exchange?.abandon()
        exchange = nil
    }

    /// The gateway answers itself (routing, policy, a failed upstream before the response began).
    func answeredLocally(_ reply: LocalReply) {
        // Added to what is there: a fault delay (DI) stays beside what came after it.
        record.responseFlags.formUnion(reply.flag)
        record.responseCodeDetails = reply.details
        releaseExchange()
    }

    /// The response ended normally.
    func responseEnded() {
        exchange = nil
        finish()
    }

    /// The upstream failed after the response began: the protocol ends the response abnormally.
    func aborted(flag: ResponseFlags, details: String) {
        record.responseFlags.formUnion(flag)
        record.responseCodeDetails = details
        releaseExchange()
        finish()
    }

    /// The client went away before its response was complete: Envoy's `DC`. `connectionClosed`: the
    /// connection ended (HTTP/1.1), not only a stream (an HTTP/2 reset), so the termination is recorded.
    func clientDisconnected(connectionClosed: Bool) {
        releaseExchange()
        if record.responseFlags.subtracting(.delayInjected).isEmpty { record.responseFlags.insert(.downstreamConnectionTermination) }
        if connectionClosed {
            record.connectionTerminationDetails = record.connectionTerminationDetails ?? "downstream_remote_disconnect"
        }
        record.responseCodeDetails = record.responseCodeDetails ?? "downstream_remote_disconnect"
        finish()
    }

    enum TunnelSide { case downstream, upstream }

    /// A tunnel (WebSocket after its upgrade) ended: the normal end of a session, one line for all of it.
    func tunnelClosed(by side: TunnelSide) {
        switch side {
        case .downstream:
            releaseExchange()
            record.connectionTerminationDetails = "downstream_tunnel_closed"
        case .upstream:
            exchange = nil
            record.connectionTerminationDetails = "upstream_tunnel_closed"
        }
        finish()
    }

    /// Writes the request's access-log line, once.
    func finish() {
        guard !logged else { return }
        logged = true
        if !mirrors.isEmpty {
            for mirror in mirrors { mirror.clientRequestFinished() }
            mirrors = []
        }
        record.durationMillis = (NIODeadline.now() - startedAt).nanoseconds / 1_000_000
        runtime.log(&record, on: loop)
    }
}

/// A protocol handler whose request waits for the `redis` rate-limit store (`DownstreamHandler` for
/// HTTP/1.1, `HTTP2ServerStream`). An object rather than closures: a waiting request then costs no
/// closure contexts.
protocol RateLimitWaiter: AnyObject {
    /// Whether `request` is still the one to act for: the client may have gone while Redis answered.
    func stillWants(_ request: RequestContext) -> Bool
    /// The rest of `request`'s dispatch, now decided.
    func rateLimitDecided(_ dispatch: Dispatch, for request: RequestContext)
}
