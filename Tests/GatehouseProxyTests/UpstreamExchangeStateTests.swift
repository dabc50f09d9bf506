import GatehouseUpstream
import Testing
@testable import GatehouseProxy

extension String: ByteCounted {
    public var byteCount: Int { utf8.count }
}

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
        #expect(failed == .end(.failedBeforeResponse(.connectFailure)))
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
        #expect(early == .end(.failedBeforeResponse(.protocolError)))
        var during = Self.receiving()
        let late = during.protocolError()
        #expect(late == .end(.failedDuringResponse(.protocolError)))
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

/// Retries in the exchange: which try results send it back for another attempt, what the next attempt
/// is sent, and when the body can no longer be replayed.
@Suite struct UpstreamExchangeRetryTests {
    typealias Exchange = UpstreamExchangeState<String, [String]>

    static func exchange(_ conditions: RetryPolicy.Conditions = [.fiveXX], retries: Int = 2, codes: [Int] = [],
                         replayLimit: Int = 1024, perTry: Int64? = nil) -> Exchange {
        Exchange(retryPolicy: RetryPolicy(retries: retries, conditions: conditions, statusCodes: codes,
                                          perTryTimeoutNanoseconds: perTry),
                 replayLimit: replayLimit)
    }

    @Test func aConnectFailureIsRetriedAndTheNextAttemptGetsTheHeldBody() {
        var exchange = Self.exchange([.connectFailure])
        _ = exchange.requestBody("a")
        _ = exchange.requestEnded(trailers: ["t"])
        let failed = exchange.attemptFailed(.connectFailure)
        #expect(failed == .retry(number: 1))
        #expect(!exchange.isFinished)
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .send(.init(body: ["a"], end: .init(trailers: ["t"]))))
    }

    @Test func noHealthyUpstreamAndOverflowAreNeverRetried() {
        for failure in [Exchange.Failure.noHealthyUpstream, .overflow, .notInRegistry] {
            var exchange = Self.exchange()
            let failed = exchange.attemptFailed(failure)
            #expect(failed == .end(.failedBeforeResponse(failure)))
        }
    }

    @Test func aRetriedResponseIsNotRelayedAndTheWholeRequestIsSentAgain() {
        var exchange = Self.exchange([.retriableStatusCodes], codes: [503])
        _ = exchange.attemptOpened(reused: false)
        let first = exchange.requestBody("a")
        let second = exchange.requestBody("b")
        #expect(first == .forward("a") && second == .forward("b"))
        _ = exchange.requestEnded(trailers: nil)
        let head = exchange.responseHead(keepAlive: true, opensTunnel: false,
                                         result: .response(status: 503, grpcStatus: nil, rateLimited: false))
        #expect(head == .retry(number: 1))
        let opened = exchange.attemptOpened(reused: true)
        #expect(opened == .send(.init(body: ["a", "b"], end: .init(trailers: nil))))
        let relayed = exchange.responseHead(keepAlive: true, opensTunnel: false,
                                            result: .response(status: 200, grpcStatus: nil, rateLimited: false))
        #expect(relayed == .relay)
        #expect(exchange.retries.retriesMade == 1 && !exchange.retries.limitReached)
    }

    @Test func bodyArrivingDuringTheBackOffFollowsTheReplayedBody() {
        var exchange = Self.exchange([.reset])
        _ = exchange.attemptOpened(reused: false)
        _ = exchange.requestBody("a")
        let closed = exchange.upstreamClosed()
        #expect(closed == .retry(number: 1))
        let held = exchange.requestBody("b")
        #expect(held == .hold)
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .send(.init(body: ["a", "b"], end: nil)))
    }

    @Test func theLastRetriableResponseIsRelayedWithTheLimitReached() {
        var exchange = Self.exchange([.gatewayError], retries: 1)
        _ = exchange.requestEnded(trailers: nil)
        let result = RetryPolicy.TryResult.response(status: 502, grpcStatus: nil, rateLimited: false)
        _ = exchange.attemptOpened(reused: false)
        let first = exchange.responseHead(keepAlive: true, opensTunnel: false, result: result)
        #expect(first == .retry(number: 1))
        _ = exchange.attemptOpened(reused: false)
        let last = exchange.responseHead(keepAlive: true, opensTunnel: false, result: result)
        #expect(last == .relay)
        #expect(exchange.retries.limitReached, "URX: the 502 the client gets was retriable")
    }

    @Test func aBodyOverTheReplayLimitEndsRetriesForThatRequest() {
        var exchange = Self.exchange([.reset], replayLimit: 3)
        _ = exchange.attemptOpened(reused: false)
        _ = exchange.requestBody("ab")
        _ = exchange.requestBody("cd")
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedBeforeResponse(.connectionTermination)))
        #expect(!exchange.retries.limitReached, "not a limit: the request could not be replayed")
    }

    @Test func aBodyWithinTheLimitIsReplayedEvenAfterTheUpstreamClosedMidBody() {
        var exchange = Self.exchange([.reset], replayLimit: 4)
        _ = exchange.attemptOpened(reused: false)
        _ = exchange.requestBody("ab")
        _ = exchange.requestBody("cd")
        let closed = exchange.upstreamClosed()
        #expect(closed == .retry(number: 1))
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .send(.init(body: ["ab", "cd"], end: nil)))
    }

    @Test func aPerTryTimeoutIsRetriedBeforeTheResponseAndIgnoredAfter() {
        var exchange = Self.exchange([.reset], retries: 1)
        _ = exchange.requestEnded(trailers: nil)
        _ = exchange.attemptOpened(reused: false)
        let first = exchange.perTryTimedOut()
        #expect(first == .retry(number: 1))
        _ = exchange.attemptOpened(reused: false)
        let last = exchange.perTryTimedOut()
        #expect(last == .end(.failedBeforeResponse(.perTryTimeout)))
        #expect(exchange.retries.limitReached)

        var receiving = Self.exchange([.reset])
        _ = receiving.attemptOpened(reused: false)
        _ = receiving.responseHead(keepAlive: true, opensTunnel: false,
                                   result: .response(status: 200, grpcStatus: nil, rateLimited: false))
        let late = receiving.perTryTimedOut()
        #expect(late == nil, "a response that began runs on under the route timeout")
    }

    @Test func theRouteTimeoutIsNeverRetried() {
        var exchange = Self.exchange([.fiveXX, .reset])
        _ = exchange.requestEnded(trailers: nil)
        _ = exchange.attemptOpened(reused: false)
        let timedOut = exchange.timedOut()
        #expect(timedOut == .failedBeforeResponse(.timeout))
    }

    @Test func aResetAfterTheResponseBeganAbortsIt() {
        var exchange = Self.exchange([.reset])
        _ = exchange.attemptOpened(reused: false)
        _ = exchange.responseHead(keepAlive: true, opensTunnel: false,
                                  result: .response(status: 200, grpcStatus: nil, rateLimited: false))
        let closed = exchange.upstreamClosed()
        #expect(closed == .end(.failedDuringResponse(.connectionTermination)))
    }

    @Test func a101IsNeverRetried() {
        var exchange = Self.exchange([.fiveXX], codes: [101])
        _ = exchange.attemptOpened(reused: false)
        let head = exchange.responseHead(keepAlive: true, opensTunnel: true,
                                         result: .response(status: 101, grpcStatus: nil, rateLimited: false))
        #expect(head == .relayAndTunnel)
    }

    @Test func aRefusedRetryLeavesTheResultAndTheOverflowFlag() {
        var exchange = Self.exchange([.connectFailure])
        let failed = exchange.attemptFailed(.connectFailure, claimRetry: { false })
        #expect(failed == .end(.failedBeforeResponse(.connectFailure)))
        #expect(exchange.retries.overflowed)
    }

    @Test func theClientLeavingDuringTheBackOffEndsTheExchange() {
        var exchange = Self.exchange([.connectFailure])
        _ = exchange.attemptFailed(.connectFailure)
        let abandoned = exchange.abandon()
        #expect(abandoned == .abandoned)
        let opened = exchange.attemptOpened(reused: false)
        #expect(opened == .discard)
    }
}

extension UpstreamExchangeRetryTests {
    @Test func aRefusedStreamIsRetriedUnderRefusedStreamButAPlainResetIsNot() {
        var refused = Self.exchange([.refusedStream])
        _ = refused.attemptOpened(reused: false)
        let retried = refused.upstreamClosed(refusedStream: true)
        #expect(retried == .retry(number: 1))
        var reset = Self.exchange([.refusedStream])
        _ = reset.attemptOpened(reused: false)
        let ended = reset.upstreamClosed()
        #expect(ended == .end(.failedBeforeResponse(.connectionTermination)))
    }
}
