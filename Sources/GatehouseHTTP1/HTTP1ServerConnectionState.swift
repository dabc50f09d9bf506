/// The life of one downstream HTTP/1.1 connection as a pure state machine: the handler tells it what
/// happened (bytes arrived, a head was decoded, the response ended, the client left, a timer fired) and
/// it answers with what to do. It owns every keep-alive, pipelining, 100-continue, upgrade, drain and
/// timer decision; the handler owns the sockets, buffers, timers and the access-log record.
///
/// One request is served at a time: a pipelined request stays undecoded until the one before it is
/// answered (RFC 9112 §9.3.2 lets a server do so), which is also how reads are held for back-pressure.
public struct HTTP1ServerConnectionState: Sendable {
    /// What the connection knows about the request it is answering.
    public struct Exchange: Sendable, Equatable {
        public let version: HTTP1Version
        public let hasBody: Bool
        public let expectsContinue: Bool
        public fileprivate(set) var keepAlive: Bool
        public fileprivate(set) var requestEnded = false
        public fileprivate(set) var responseStarted = false
        public fileprivate(set) var responseEnded = false
        /// The response body goes out with chunked framing.
        public fileprivate(set) var chunkedResponse = false
    }

    public enum State: Sendable, Equatable {
        /// A plain port before the first bytes have ruled HTTP/2's preface out.
        case awaitingFirstBytes
        /// Between requests.
        case idle
        case exchange(Exchange)
        /// A WebSocket upgrade succeeded: bytes flow both ways untouched until either side closes.
        case tunnel
        /// The connection turned out to be HTTP/2 and belongs to that handler now.
        case handedOff
        case closed
    }

    public private(set) var state: State
    /// A drain asked this connection to finish: no request after the current one.
    public private(set) var quiescing = false
    /// The upstream cannot take more request body: stop decoding and reading.
    public private(set) var upstreamBlocked = false
    /// The channel asked for a read while reads were held; it is owed one.
    public private(set) var readPending = false

    /// `sniffsPreface`: a plain port, where a client may speak HTTP/2 with prior knowledge.
    public init(sniffsPreface: Bool) {
        state = sniffsPreface ? .awaitingFirstBytes : .idle
    }

    public var exchange: Exchange? {
        if case .exchange(let exchange) = state { return exchange }
        return nil
    }

    public var isClosed: Bool { state == .closed }

    // MARK: inbound bytes

    public enum InboundAction: Sendable, Equatable {
        /// Not this handler's business any more (HTTP/2 took over).
        case passThrough
        /// Send the bytes up the tunnel as they are.
        case tunnel
        /// Look for HTTP/2's preface first.
        case checkPreface
        /// Buffer them and decode what the state allows.
        case decode
        /// The connection is closing: drop them.
        case discard
    }

    public func bytesArrived() -> InboundAction {
        switch state {
        case .handedOff: .passThrough
        case .tunnel: .tunnel
        case .awaitingFirstBytes: .checkPreface
        case .idle, .exchange: .decode
        case .closed: .discard
        }
    }

    public enum PrefaceCheck: Sendable { case needMoreBytes, http2, http1 }

    public enum PrefaceAction: Sendable, Equatable {
        /// Keep timing the head: a client that sends part of a preface and stops is cut off.
        case waitForMoreBytes
        /// Hand the connection and its buffered bytes to HTTP/2; `owedRead` says a read held back here
        /// must be issued, or the connection is never read again.
        case switchToHTTP2(owedRead: Bool)
        case decode
    }

    public mutating func prefaceChecked(_ check: PrefaceCheck) -> PrefaceAction {
        guard state == .awaitingFirstBytes else { return .decode }
        switch check {
        case .needMoreBytes:
            return .waitForMoreBytes
        case .http2:
            state = .handedOff
            defer { readPending = false }
            return .switchToHTTP2(owedRead: readPending)
        case .http1:
            state = .idle
            return .decode
        }
    }

    /// Whether the decoder may produce the next event: not while closing or blocked upstream, and not the
    /// next pipelined request while this one is unanswered.
    public var mayDecode: Bool {
        guard !upstreamBlocked else { return false }
        switch state {
        case .idle: return true
        case .exchange(let exchange): return !exchange.requestEnded
        case .awaitingFirstBytes, .tunnel, .handedOff, .closed: return false
        }
    }

    // MARK: request events

    /// A request head was decoded: this connection now serves it. `draining`: the whole gateway drains.
    public mutating func requestHeadReceived(version: HTTP1Version, keepAlive: Bool, hasBody: Bool,
                                             expectsContinue: Bool, draining: Bool) {
        assert(state == .idle, "a head decoded while a request was in progress")
        state = .exchange(Exchange(version: version, hasBody: hasBody, expectsContinue: expectsContinue,
                                   keepAlive: keepAlive && !quiescing && !draining))
    }

    /// The request goes upstream. Returns whether to answer `100 Continue` first: only an HTTP/1.1 client
    /// that asked, and only once it is certain the body is wanted (a local reply never sends one).
    public func forwarding() -> Bool {
        guard let exchange else { return false }
        return exchange.expectsContinue && exchange.version == .http1_1 && !exchange.responseStarted
    }

    /// Whether a decoded body piece belongs to a request still being answered (after a local reply the
    /// rest of the body is read and dropped).
    public var bodyHasAReader: Bool { exchange != nil }

    public enum RequestEndAction: Sendable, Equatable {
        /// Nothing is being answered (the piece was left over).
        case ignore
        /// Pass the end on; the response is still to come.
        case forward
        /// Pass the end on; the response was already sent, so the request is complete.
        case forwardAndComplete
    }

    public mutating func requestEnded() -> RequestEndAction {
        guard case .exchange(var exchange) = state else { return .ignore }
        exchange.requestEnded = true
        guard exchange.responseEnded else {
            state = .exchange(exchange)
            return .forward
        }
        state = .idle
        upstreamBlocked = false
        return .forwardAndComplete
    }

    // MARK: response events

    /// The `connection` field the gateway adds to a response head.
    public enum ConnectionField: Sendable, Equatable {
        case omitted, close, keepAlive
    }

    /// How a response head is written.
    public struct ResponseHeadPlan: Sendable, Equatable {
        public var chunked: Bool
        public var connectionField: ConnectionField

        public init(chunked: Bool, connectionField: ConnectionField) {
            self.chunked = chunked
            self.connectionField = connectionField
        }
    }

    /// The response head is about to be written. `bodyFraming` is how its body arrives from upstream:
    /// an HTTP/1.1 client gets anything without a length chunked, an HTTP/1.0 client gets it ended by
    /// the close.
    public mutating func responseHeadStarting(status: Int, bodyFraming: HTTP1BodyFraming,
                                              draining: Bool) -> ResponseHeadPlan? {
        guard case .exchange(var exchange) = state else { return nil }
        switch bodyFraming {
        case .chunked, .untilClose:
            if exchange.version == .http1_1 { exchange.chunkedResponse = true } else { exchange.keepAlive = false }
        case .none, .contentLength:
            break
        }
        if quiescing || draining { exchange.keepAlive = false }
        exchange.responseStarted = true
        state = .exchange(exchange)
        let field: ConnectionField
        if status == 101 {
            field = .omitted  // the upgrade's own `connection: upgrade` goes out; no keep-alive talk
        } else if !exchange.keepAlive {
            field = .close
        } else {
            field = exchange.version == .http1_0 ? .keepAlive : .omitted
        }
        return ResponseHeadPlan(chunked: exchange.chunkedResponse, connectionField: field)
    }

    public enum LocalReplyAction: Sendable, Equatable {
        /// Write the reply as a whole response.
        case send
        /// The response already began: HTTP/1.1 can only say it failed by closing.
        case abort
        case ignore
    }

    /// The gateway answers by itself. `closeConnection`: the reply's kind ends the connection (a
    /// malformed request, a timeout). A body not read yet would have to be drained first: the connection
    /// closes after the reply instead, as Envoy's does.
    public mutating func localReply(closeConnection: Bool) -> LocalReplyAction {
        guard case .exchange(var exchange) = state else { return .ignore }
        guard !exchange.responseStarted else { return .abort }
        if closeConnection || (!exchange.requestEnded && exchange.hasBody) { exchange.keepAlive = false }
        state = .exchange(exchange)
        return .send
    }

    /// A request the client never finished sending (a head that failed to decode or timed out) is
    /// answered as one that ends the connection.
    public mutating func unfinishedRequest() -> LocalReplyAction {
        switch state {
        case .idle, .awaitingFirstBytes:
            state = .exchange(Exchange(version: .http1_1, hasBody: false, expectsContinue: false, keepAlive: false))
            return .send
        case .exchange:
            return localReply(closeConnection: true)
        case .tunnel, .handedOff, .closed:
            return .ignore
        }
    }

    public enum ResponseEndAction: Sendable, Equatable {
        /// Flush; when `requestComplete`, the next pipelined request may be decoded.
        case flush(requestComplete: Bool)
        /// Flush, then close once written.
        case flushAndClose
        case ignore
    }

    public mutating func responseEnded() -> ResponseEndAction {
        guard case .exchange(var exchange) = state else { return .ignore }
        exchange.responseEnded = true
        guard exchange.keepAlive else {
            state = .closed
            return .flushAndClose
        }
        if exchange.requestEnded {
            state = .idle
            upstreamBlocked = false
            return .flush(requestComplete: true)
        }
        // The response came first: the rest of the request body is read and dropped, then the request
        // completes with `requestEnded()`.
        state = .exchange(exchange)
        return .flush(requestComplete: false)
    }

    public enum NextRequestAction: Sendable, Equatable {
        case decode
        case close
        case none
    }

    /// What follows a completed request. `bufferedBytes`: undecoded bytes are waiting (a pipelined
    /// request); a draining connection still answers none of them.
    public mutating func requestCompleted(bufferedBytes: Bool) -> NextRequestAction {
        guard state == .idle else { return .none }
        if quiescing, !bufferedBytes {
            state = .closed
            return .close
        }
        return .decode
    }

    /// The upstream failed after the response began: close.
    public mutating func responseAborted() -> Bool {
        guard case .exchange = state else { return false }
        state = .closed
        return true
    }

    // MARK: tunnel

    public mutating func tunnelStarted() {
        guard case .exchange = state else { return }
        state = .tunnel
    }

    public enum TunnelCloseAction: Sendable, Equatable {
        /// Write the tunnel's one access-log line, then close.
        case logAndClose
        case close
        /// Already closed.
        case none
    }

    /// The upstream closed the tunnel.
    public mutating func tunnelClosedByUpstream() -> TunnelCloseAction {
        switch state {
        case .closed:
            return .none
        case .tunnel:
            state = .closed
            return .logAndClose
        default:
            state = .closed
            return .close
        }
    }

    // MARK: connection events

    public enum InactiveAction: Sendable, Equatable {
        /// The client ended its tunnel: the normal end of a WebSocket session.
        case logTunnelClosed
        /// The client left before its response was complete (Envoy's `DC`).
        case logDownstreamDisconnect
        case none
    }

    public mutating func channelInactive() -> InactiveAction {
        defer { state = .closed }
        switch state {
        case .tunnel: return .logTunnelClosed
        case .exchange(let exchange) where !exchange.responseEnded: return .logDownstreamDisconnect
        default: return .none
        }
    }

    /// The connection is closing by the handler's decision. Returns false if it already was.
    public mutating func close() -> Bool {
        guard state != .closed else { return false }
        state = .closed
        return true
    }

    public enum QuiesceAction: Sendable, Equatable {
        /// Nothing is in progress: close now.
        case close
        /// Finish what is in progress, then close.
        case finishFirst
        case none
    }

    /// A drain began. `bufferedBytes`: part of a request is waiting; it is read to its end and answered.
    public mutating func quiesce(bufferedBytes: Bool) -> QuiesceAction {
        quiescing = true
        switch state {
        case .exchange(var exchange):
            exchange.keepAlive = false
            state = .exchange(exchange)
            return .finishFirst
        case .idle where !bufferedBytes, .awaitingFirstBytes where !bufferedBytes:
            state = .closed
            return .close
        case .idle, .awaitingFirstBytes, .tunnel:
            return .finishFirst
        case .handedOff, .closed:
            return .none
        }
    }

    public mutating func setUpstreamBlocked(_ blocked: Bool) {
        upstreamBlocked = blocked
    }

    // MARK: reads

    /// Reads are held while closing, while the upstream cannot take more, and while undecoded bytes wait
    /// behind the request in progress: at most one read's worth of a pipelined request is buffered.
    public func holdsReads(bufferedBytes: Bool) -> Bool {
        switch state {
        case .handedOff: return false
        case .closed: return true
        case .tunnel: return upstreamBlocked
        case .exchange(let exchange): return upstreamBlocked || (exchange.requestEnded && bufferedBytes)
        case .idle, .awaitingFirstBytes: return upstreamBlocked
        }
    }

    /// The channel asks for a read. Returns whether to pass it on now; a held read is owed.
    public mutating func readRequested(bufferedBytes: Bool) -> Bool {
        if holdsReads(bufferedBytes: bufferedBytes) {
            readPending = true
            return false
        }
        return true
    }

    /// After anything that may release held reads. Returns whether to issue the owed read now.
    public mutating func resumeReads(bufferedBytes: Bool) -> Bool {
        guard readPending, !holdsReads(bufferedBytes: bufferedBytes) else { return false }
        readPending = false
        return true
    }

    // MARK: timers

    public enum IdleTimerAction: Sendable, Equatable {
        case none
        /// Work is in progress: count it as activity and look again a whole timeout later.
        case extend
        /// Activity since the timer was set: look again when the quiet period since then ends.
        case rearm
        case close
    }

    /// `quietPeriodElapsed`: no activity for a whole timeout.
    public mutating func idleTimerFired(quietPeriodElapsed: Bool) -> IdleTimerAction {
        switch state {
        case .closed, .handedOff: return .none
        case .exchange, .tunnel: return .extend
        case .idle, .awaitingFirstBytes:
            guard quietPeriodElapsed else { return .rearm }
            state = .closed
            return .close
        }
    }

    /// Whether a head that did not arrive in time is answered (408): only when no request is in progress.
    public mutating func headersTimedOut() -> LocalReplyAction {
        switch state {
        case .idle, .awaitingFirstBytes: return unfinishedRequest()
        default: return .ignore
        }
    }
}
