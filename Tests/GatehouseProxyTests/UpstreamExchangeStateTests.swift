import Testing
@testable import GatehouseProxy

/// Every transition of the upstream side of an exchange, without a socket: bodies are strings and
/// trailers a list of names, so each test reads as what a request goes through.
@Suite struct UpstreamExchangeStateTests {
    typealias Exchange = UpstreamExchangeState<String, [String]>

    /// An exchange whose attempt has the head (and, when `ended`, the request's end).
    static func sending(reused: Bool = false, ended: Bool = true) -> Exchange {
        var exchange = Exchange()
        if ended { _ = exchange.requestEnded(trailers: nil) }
        _ = exchange.attemptOpened(reused: reused)
        return exchange
    }

    /// An exchange relaying a response whose head said `keepAlive`.
    static func receiving(keepAlive: Bool = true, ended: Bool = true) -> Exchange {
        var exchange = sending(ended: ended)
        _ = exchange.responseHead(keepAlive: keepAlive, opensTunnel: false)
        return exchange
    }

    // MARK: before an attempt exists

    @Test func bodyThatArrivesBeforeTheAttemptIsHeldInOrderAndSentAfterTheHead() {
        var exchange = Exchange()
        let first = exchange.requestBody("a")
        let second = exchange.requestBody("b")
        let end = exchange.requestEnded(trailers: ["grpc-status"])
        #expect(first == .hold && second == .hold)
        #expect(end == .hold, "the route timeout starts at the request's end even without an attempt")
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .send(.init(body: ["a", "b"], end: .init(trailers: ["grpc-status"]))))
    }

    @Test func anAttemptOpenedBeforeTheBodyGetsOnlyTheHeadAndTheBodyIsForwardedAsItComes() {
        var exchange = Exchange()
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .send(.init(body: [], end: nil)))
        let body = exchange.requestBody("a")
        #expect(body == .forward("a"))
        let end = exchange.requestEnded(trailers: nil)
        #expect(end == .forward(.init(trailers: nil)))
        let again = exchange.requestEnded(trailers: nil)
        #expect(again == .ignore, "a request ends once")
    }

    @Test func noEndpointOrAFailedConnectIsAnsweredLocallyOnce() {
        var exchange = Exchange()
        _ = exchange.requestBody("a")
        let failed = exchange.attemptFailed(.connectFailure)
        #expect(failed == .failedBeforeResponse(.connectFailure))
        #expect(exchange.isFinished)
        let late = exchange.attemptFailed(.noHealthyUpstream)
        #expect(late == nil)
        let body = exchange.requestBody("b")
        #expect(body == .drop)
    }

    @Test func theClientLeavingWhileConnectingDiscardsTheAttemptWhenItArrives() {
        var exchange = Exchange()
        _ = exchange.requestBody("a")
        let abandoned = exchange.abandon()
        #expect(abandoned == .abandoned)
        let opened = exchange.attemptOpened(reused: true)
        #expect(opened == .discard)
        let failed = exchange.attemptFailed(.connectFailure)
        #expect(failed == nil, "a connect failing after the client left answers nobody")
    }

    @Test func theRouteTimeoutBeforeAnAttemptExistsIsAnsweredLocally() {
        var exchange = Exchange()
        _ = exchange.requestEnded(trailers: nil)
        let timedOut = exchange.timedOut()
        #expect(timedOut == .failedBeforeResponse(.timeout))
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .discard)
    }

    // MARK: the response

    @Test func aResponseAfterTheWholeRequestLeavesAKeepAliveConnectionReusable() {
        var exchange = Self.sending()
        #expect(exchange.isReceiving)
        let head = exchange.responseHead(keepAlive: true, opensTunnel: false)
        #expect(head == .relay)
        let end = exchange.responseEnded()
        #expect(end == .completed(reusable: true))
        #expect(exchange.isFinished && !exchange.isReceiving)
    }

    @Test func aResponseThatAsksToCloseLeavesTheConnectionUnreusable() {
        var exchange = Self.receiving(keepAlive: false)
        let end = exchange.responseEnded()
        #expect(end == .completed(reusable: false))
    }

    @Test func anUpstreamThatAnswersBeforeTheBodyEndsCannotBeReusedAndTheRestOfTheBodyIsDropped() {
        var exchange = Self.sending(ended: false)
        let body = exchange.requestBody("part")
        #expect(body == .forward("part"))
        _ = exchange.responseHead(keepAlive: true, opensTunnel: false)
        let end = exchange.responseEnded()
        #expect(end == .completed(reusable: false), "the rest of the body would arrive on the connection")
        let rest = exchange.requestBody("rest")
        #expect(rest == .drop)
        let requestEnd = exchange.requestEnded(trailers: nil)
        #expect(requestEnd == .ignore)
    }

    @Test func aSecondResponseHeadOrAnEndWithoutAHeadIsIgnored() {
        var exchange = Self.sending()
        let endFirst = exchange.responseEnded()
        #expect(endFirst == nil)
        _ = exchange.responseHead(keepAlive: true, opensTunnel: false)
        let second = exchange.responseHead(keepAlive: true, opensTunnel: false)
        #expect(second == .ignore)
    }

    // MARK: the upstream closing

    @Test func aReusedConnectionClosedBeforeAnyBodyWentOutIsRetriedOnceOnANewConnection() {
        var exchange = Self.sending(reused: true)
        let closed = exchange.upstreamClosed()
        #expect(closed == .retryOnNewConnection)
        #expect(!exchange.isFinished && !exchange.isReceiving)
        let reopened = exchange.attemptOpened(reused: false)
        #expect(reopened == .send(.init(body: [], end: .init(trailers: nil))), "the head and end go out again")
        let closedAgain = exchange.upstreamClosed()
        #expect(closedAgain == .end(.failedBeforeResponse(.connectionTermination)))
    }

    @Test func theRetryIsMadeOnlyOnceEvenWhenTheNewAttemptIsReusedToo() {
        var exchange = Self.sending(reused: true)
        _ = exchange.upstreamClosed()
        _ = exchange.attemptOpened(reused: true)
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedBeforeResponse(.connectionTermination)))
    }

    @Test func bodyArrivingDuringTheRetryIsHeldForTheNewAttempt() {
        var exchange = Self.sending(reused: true, ended: false)
        _ = exchange.upstreamClosed()
        let body = exchange.requestBody("late")
        #expect(body == .hold)
        let reopened = exchange.attemptOpened(reused: false)
        #expect(reopened == .send(.init(body: ["late"], end: nil)))
    }

    @Test func aReusedConnectionClosedAfterBodyWentOutIsNotRetried() {
        var exchange = Self.sending(reused: true, ended: false)
        _ = exchange.requestBody("sent")
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedBeforeResponse(.connectionTermination)), "the body cannot be sent again")
    }

    @Test func aNewConnectionClosedBeforeTheResponseIsNotRetried() {
        var exchange = Self.sending(reused: false)
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedBeforeResponse(.connectionTermination)))
    }

    @Test func theUpstreamClosingMidResponseAbortsIt() {
        var exchange = Self.receiving()
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedDuringResponse(.connectionTermination)))
        let late = exchange.upstreamClosed()
        #expect(late == .ignore)
    }

    @Test func aProtocolErrorBeforeTheResponseIsAnsweredAndAfterItAborts() {
        var before = Self.sending()
        let early = before.protocolError()
        #expect(early == .failedBeforeResponse(.protocolError))
        var during = Self.receiving()
        let late = during.protocolError()
        #expect(late == .failedDuringResponse(.protocolError))
        let again = during.protocolError()
        #expect(again == nil)
    }

    @Test func theRouteTimeoutAnswersBeforeTheResponseAndAbortsAfter() {
        var before = Self.sending()
        let early = before.timedOut()
        #expect(early == .failedBeforeResponse(.timeout))
        var during = Self.receiving()
        let late = during.timedOut()
        #expect(late == .failedDuringResponse(.timeout))
    }

    // MARK: tunnels and the client giving up

    @Test func a101ThatAnswersTheUpgradeOpensATunnelThatOnlyTheUpstreamClosingEnds() {
        var exchange = Self.sending()
        let head = exchange.responseHead(keepAlive: true, opensTunnel: true)
        #expect(head == .relayAndTunnel)
        #expect(exchange.isTunnelling && !exchange.isReceiving)
        let body = exchange.requestBody("frame")
        #expect(body == .drop, "tunnel bytes take their own path, never the request body's")
        let timedOut = exchange.timedOut()
        #expect(timedOut == nil, "the route timeout does not apply to a tunnel")
        let failed = exchange.protocolError()
        #expect(failed == nil)
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.tunnelClosed))
    }

    @Test func theClientGivingUpEndsTheExchangeOnceWhateverItsPhase() {
        for var exchange in [Exchange(), Self.sending(), Self.receiving()] {
            let abandoned = exchange.abandon()
            #expect(abandoned == .abandoned)
            let again = exchange.abandon()
            #expect(again == nil)
            let closed = exchange.upstreamClosed()
            #expect(closed == .ignore, "nothing is reported to a client that left")
        }
        var completed = Self.receiving()
        _ = completed.responseEnded()
        let afterEnd = completed.abandon()
        #expect(afterEnd == nil, "an exchange that finished on its own has nothing to abandon")
    }
}
