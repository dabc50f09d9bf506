import GatehouseUpstream
import NIOCore

/// The upstream side of one proxied request as a pure state machine: events in (an attempt opened or
/// failed, request body, response head and end, the upstream closing, the route timeout, the client
/// giving up), actions out. No I/O: `ProxyExchange` carries the actions out on the event loop, and the
/// `UpstreamAttempt` it holds does the protocol-specific writing.
///
/// Generic over the body and trailer types only so the tests need no NIO; the gateway uses ByteBuffer
/// and HTTPHeaderBlock.
///
/// A request body that arrives before an attempt exists (while resolving or connecting) is held here,
/// in order, and sent right after the head. The shell holds the client's reads meanwhile, so what is
/// held is bounded by one read.
///
/// Retries: a try that ends in a result the route's `RetryPolicy` retries (before any response reached
/// the client) sends the exchange back to waiting for an attempt, and the next attempt is sent the
/// whole request again. So the body given to attempts is kept while a retry is still possible, up to
/// `replayLimit` bytes; a request whose body outgrows it is not retried (as Envoy gives up retrying a
/// request it could not buffer).
struct UpstreamExchangeState<Body: ByteCounted, Trailers> {
    /// Why an exchange failed; the shell turns it into a local reply (before the response began) or an
    /// aborted response (after), with Envoy's flag and details for each.
    enum Failure: Equatable, Sendable {
        /// No endpoint, or a name that did not resolve (UH).
        case noHealthyUpstream
        /// The connection or stream could not be opened (UF).
        case connectFailure
        /// The upstream closed or reset (UC).
        case connectionTermination
        /// The upstream broke HTTP (UPE).
        case protocolError
        /// The route timeout fired (UT).
        case timeout
        /// The try's `perTryTimeout` fired before a response head, and no retry followed (UT).
        case perTryTimeout
        /// A circuit breaker of the cluster (`connectionPool` limits) refused the request (UO).
        case overflow
        /// The host a `resolution: NONE` ServiceEntry's cluster was asked for is not one of its hosts
        /// (REGISTRY_ONLY: 502 NR).
        case notInRegistry
    }

    /// How the exchange ended. Every case but `completed(reusable: true)` closes the attempt (an HTTP/2
    /// stream is reset; its connection serves others).
    enum Outcome: Equatable, Sendable {
        /// The response ended; the attempt's connection may serve another request when `reusable`.
        case completed(reusable: Bool)
        /// Nothing reached the client yet: answer it locally.
        case failedBeforeResponse(Failure)
        /// The response began: end it abnormally.
        case failedDuringResponse(Failure)
        /// A WebSocket tunnel's upstream side closed.
        case tunnelClosed
        /// The client side gave up (gone, or answered locally): nothing more to tell it.
        case abandoned
    }

    /// The end of the request, once the client sent it.
    struct RequestEnd {
        var trailers: Trailers?
    }

    /// What an opened attempt is sent first.
    struct Opening {
        /// Body that arrived while there was no attempt, in order.
        var body: [Body]
        /// Set when the request already ended.
        var end: RequestEnd?
    }

    enum AttemptOpenedAction {
        /// Send the head, then `Opening`'s body and end.
        case send(Opening)
        /// The exchange is over (the client left while connecting): close the attempt unused.
        case discard
    }

    enum BodyAction {
        case forward(Body)
        /// No attempt yet: the body waits (and the client's reads stay held).
        case hold
        /// The exchange is over or tunnelling: the bytes have nowhere to go.
        case drop
    }

    enum RequestEndAction {
        /// Send the end to the attempt and start the route timeout.
        case forward(RequestEnd)
        /// No attempt yet: the end waits; the route timeout starts now (Envoy times from the request's end).
        case hold
        case ignore
    }

    /// After a try failed or was answered with a result the retry policy may retry.
    enum TryEndAction {
        /// Back off, then open a new attempt: it is sent the request again from the start.
        case retry(number: Int)
        case end(Outcome)
    }

    enum ResponseHeadAction {
        /// The response is retried instead: close the attempt (its response is not relayed).
        case retry(number: Int)
        case relay
        /// Relay the 101 and turn both sides into a byte tunnel; the route timeout no longer applies.
        case relayAndTunnel
        case ignore
    }

    enum UpstreamClosedAction {
        /// A reused connection the upstream had closed while idle: try once more on a new connection.
        case retryOnNewConnection
        /// The route's retry policy retries the reset: back off, then a new attempt.
        case retry(number: Int)
        case end(Outcome)
        case ignore
    }

    private enum Phase {
        /// Resolving or connecting; no attempt to write to.
        case awaitingAttempt
        /// The attempt has the head; no response yet.
        case sending
        /// The response head went to the client.
        case receiving(keepAlive: Bool)
        case tunnelling
        case finished
    }

    private var phase = Phase.awaitingAttempt
    private var held: [Body] = []
    private var requestEnd: RequestEnd?
    private var attemptReused = false
    private var bodySent = false
    private var retried = false
    /// Retries made and the flags they leave for the access log.
    private(set) var retries: RetryState
    private let replayLimit: Int
    /// Body already given to attempts, kept while a retry may have to send it again.
    private var sent: [Body] = []
    private var sentBytes = 0
    /// Body went out that was not kept (over `replayLimit`): the request can no longer be retried.
    private var replayLost = false

    /// `retryPolicy` nil (or with no retries): every try's result stands. `replayLimit`: the most body
    /// bytes kept for a retry to send again.
    init(retryPolicy: RetryPolicy? = nil, replayLimit: Int = 0) {
        retries = RetryState(policy: retryPolicy)
        self.replayLimit = replayLimit
    }

    var isFinished: Bool {
        if case .finished = phase { return true }
        return false
    }

    /// Whether the client's request ended (its end was forwarded or is held).
    var requestHasEnded: Bool { requestEnd != nil }

    var isTunnelling: Bool {
        if case .tunnelling = phase { return true }
        return false
    }

    /// Whether response events from the attempt still mean anything.
    var isReceiving: Bool {
        switch phase {
        case .sending, .receiving: true
        case .awaitingAttempt, .tunnelling, .finished: false
        }
    }

    // MARK: attempts

    /// An attempt is ready to take the request; `reused` when its connection served a request before.
    mutating func attemptOpened(reused: Bool) -> AttemptOpenedAction {
        guard case .awaitingAttempt = phase else { return .discard }
        phase = .sending
        attemptReused = reused
        let opening = Opening(body: held, end: requestEnd)
        if !held.isEmpty { bodySent = true }
        for body in held { keepForReplay(body) }
        held = []
        return .send(opening)
    }

    /// No attempt could be made (no endpoint, resolution or connect failure). Only a connect failure
    /// can be retried. nil once finished.
    mutating func attemptFailed(_ failure: Failure, claimRetry: () -> Bool = { true }) -> TryEndAction? {
        guard case .awaitingAttempt = phase else { return nil }
        if failure == .connectFailure, case .retry(let number) = decide(.connectFailure, claimRetry: claimRetry) {
            return .retry(number: number)
        }
        return .end(finish(.failedBeforeResponse(failure)))
    }

    // MARK: request side

    mutating func requestBody(_ body: Body) -> BodyAction {
        switch phase {
        case .awaitingAttempt:
            held.append(body)
            return .hold
        case .sending:
            bodySent = true
            keepForReplay(body)
            return .forward(body)
        case .receiving:
            return .forward(body)
        case .tunnelling, .finished:
            return .drop
        }
    }

    mutating func requestEnded(trailers: Trailers?) -> RequestEndAction {
        guard requestEnd == nil else { return .ignore }
        switch phase {
        case .awaitingAttempt:
            requestEnd = RequestEnd(trailers: trailers)
            return .hold
        case .sending, .receiving:
            let end = RequestEnd(trailers: trailers)
            requestEnd = end
            return .forward(end)
        case .tunnelling, .finished:
            return .ignore
        }
    }

    // MARK: response side

    /// A final response head. `opensTunnel` when it is a 101 the shell checked answers the upgrade it
    /// forwarded; a head the shell rejected is reported as `protocolError()` instead. `result` is what
    /// the retry policy judges (a 101 never is).
    mutating func responseHead(keepAlive: Bool, opensTunnel: Bool, result: RetryPolicy.TryResult? = nil,
                               claimRetry: () -> Bool = { true }) -> ResponseHeadAction {
        guard case .sending = phase else { return .ignore }
        if !opensTunnel, let result, case .retry(let number) = decide(result, claimRetry: claimRetry) {
            return .retry(number: number)
        }
        // The response goes to the client: nothing can be retried from here on.
        sent = []
        if opensTunnel {
            phase = .tunnelling
            return .relayAndTunnel
        }
        phase = .receiving(keepAlive: keepAlive)
        return .relay
    }

    /// The response ended. Its connection is reusable only when the request also ended (the upstream
    /// answered early otherwise, and the rest of the body would follow) and the upstream keeps it alive.
    mutating func responseEnded() -> Outcome? {
        switch phase {
        case .sending:
            // A response without a head cannot end; the attempt reports that as a protocol error.
            return nil
        case .receiving(let keepAlive):
            return finish(.completed(reusable: requestEnd != nil && keepAlive))
        case .awaitingAttempt, .tunnelling, .finished:
            return nil
        }
    }

    /// The upstream closed (or reset) the attempt; `refusedStream` when an HTTP/2 upstream refused the
    /// stream before processing it.
    mutating func upstreamClosed(refusedStream: Bool = false, claimRetry: () -> Bool = { true }) -> UpstreamClosedAction {
        switch phase {
        case .awaitingAttempt, .finished:
            return .ignore
        case .tunnelling:
            return .end(finish(.tunnelClosed))
        case .sending:
            // The race every pool has: the upstream closed an idle connection as we reused it. Repeating
            // the request is safe only when nothing but its head (and end) went out, and done once.
            if attemptReused, !bodySent, !retried {
                retried = true
                attemptReused = false
                phase = .awaitingAttempt
                held = sent + held
                sent = []
                sentBytes = 0
                return .retryOnNewConnection
            }
            if case .retry(let number) = decide(refusedStream ? .refusedStream : .reset, claimRetry: claimRetry) {
                return .retry(number: number)
            }
            return .end(finish(.failedBeforeResponse(.connectionTermination)))
        case .receiving:
            return .end(finish(.failedDuringResponse(.connectionTermination)))
        }
    }

    /// The upstream broke HTTP (or sent a head the shell refused). Retried like a reset when no response
    /// reached the client.
    mutating func protocolError(claimRetry: () -> Bool = { true }) -> TryEndAction? {
        if case .sending = phase, case .retry(let number) = decide(.reset, claimRetry: claimRetry) {
            return .retry(number: number)
        }
        return fail(.protocolError).map { .end($0) }
    }

    /// The route timeout: the end of the exchange, whatever the retry policy says.
    mutating func timedOut() -> Outcome? { fail(.timeout) }

    /// The try's `perTryTimeout` fired. It only counts before a response head: once the response began,
    /// it runs on under the route timeout (as Envoy ignores a late per-try timeout).
    mutating func perTryTimedOut(claimRetry: () -> Bool = { true }) -> TryEndAction? {
        guard case .sending = phase else { return nil }
        if case .retry(let number) = decide(.perTryTimeout, claimRetry: claimRetry) { return .retry(number: number) }
        return .end(finish(.failedBeforeResponse(.perTryTimeout)))
    }

    /// The client side gave up. nil when the exchange had already ended on its own.
    mutating func abandon() -> Outcome? {
        if case .finished = phase { return nil }
        return finish(.abandoned)
    }

    // MARK: retries

    /// Asks the retry policy about a try's result; a retry sends the exchange back to waiting for an
    /// attempt with the whole request (kept body first, then whatever arrived since) to send again.
    private mutating func decide(_ result: RetryPolicy.TryResult, claimRetry: () -> Bool) -> RetryState.Decision {
        let decision = retries.decide(result, replayable: !replayLost, claimRetry: claimRetry)
        guard case .retry = decision else { return decision }
        phase = .awaitingAttempt
        attemptReused = false
        bodySent = false
        held = sent + held
        sent = []
        sentBytes = 0
        return decision
    }

    /// Keeps a piece of body given to an attempt while a retry could need it; past `replayLimit` nothing
    /// is kept and the request is no longer retried.
    private mutating func keepForReplay(_ body: Body) {
        guard !replayLost, retries.canStillRetry else { return }
        sentBytes += body.byteCount
        guard sentBytes <= replayLimit else {
            replayLost = true
            sent = []
            return
        }
        sent.append(body)
    }

    private mutating func fail(_ failure: Failure) -> Outcome? {
        switch phase {
        case .finished, .tunnelling:
            return nil
        case .awaitingAttempt, .sending:
            return finish(.failedBeforeResponse(failure))
        case .receiving:
            return finish(.failedDuringResponse(failure))
        }
    }

    private mutating func finish(_ outcome: Outcome) -> Outcome {
        phase = .finished
        held = []
        sent = []
        return outcome
    }
}

/// A piece of request body whose size counts against the retry replay limit.
protocol ByteCounted {
    var byteCount: Int { get }
}

extension ByteBuffer: ByteCounted {
    var byteCount: Int { readableBytes }
}

// Equatable where the payloads are: what the tests compare actions with.
extension UpstreamExchangeState.RequestEnd: Equatable where Trailers: Equatable {}
extension UpstreamExchangeState.Opening: Equatable where Body: Equatable, Trailers: Equatable {}
extension UpstreamExchangeState.AttemptOpenedAction: Equatable where Body: Equatable, Trailers: Equatable {}
extension UpstreamExchangeState.BodyAction: Equatable where Body: Equatable {}
extension UpstreamExchangeState.RequestEndAction: Equatable where Trailers: Equatable {}
extension UpstreamExchangeState.UpstreamClosedAction: Equatable {}
extension UpstreamExchangeState.TryEndAction: Equatable {}
extension UpstreamExchangeState.ResponseHeadAction: Equatable {}
