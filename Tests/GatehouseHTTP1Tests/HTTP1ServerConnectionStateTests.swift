import GatehouseHTTP1
import Testing

/// Every transition of a downstream HTTP/1.1 connection, without a socket: events in, actions out.
@Suite struct HTTP1ServerConnectionStateTests {
    typealias Connection = HTTP1ServerConnectionState

    /// A TLS-port connection with one request head decoded.
    static func serving(version: HTTP1Version = .http1_1, keepAlive: Bool = true, hasBody: Bool = false,
                        expectsContinue: Bool = false, draining: Bool = false) -> Connection {
        var connection = Connection(sniffsPreface: false)
        connection.requestHeadReceived(version: version, keepAlive: keepAlive, hasBody: hasBody,
                                       expectsContinue: expectsContinue, draining: draining)
        return connection
    }

    // MARK: keep-alive and pipelining

    @Test func aKeepAliveRequestAnsweredAfterItsEndLeavesTheConnectionReadyForTheNext() {
        var connection = Self.serving()
        let end = connection.requestEnded()
        #expect(end == .forward)
        #expect(!connection.mayDecode, "a pipelined request waits for this one's response")
        let plan = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(5), draining: false)
        #expect(plan == .init(chunked: false, connectionField: .omitted))
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flush(requestComplete: true))
        #expect(connection.state == .idle)
        let next = connection.requestCompleted(bufferedBytes: true)
        #expect(next == .decode)
        #expect(connection.mayDecode)
    }

    @Test func readsAreHeldWhileAPipelinedRequestWaitsBehindTheOneInProgress() {
        var connection = Self.serving()
        _ = connection.requestEnded()
        let readPassed = connection.readRequested(bufferedBytes: true)
        #expect(!readPassed)
        #expect(connection.readPending)
        let readResumed = connection.resumeReads(bufferedBytes: true)
        #expect(!readResumed)
        _ = connection.responseHeadStarting(status: 200, bodyFraming: .none, draining: false)
        _ = connection.responseEnded()
        let readResumed2 = connection.resumeReads(bufferedBytes: true)
        #expect(readResumed2, "the owed read is issued once the request is done")
        #expect(!connection.readPending)
    }

    @Test func withoutBufferedBytesAReadPassesEvenWhileTheResponseIsPending() {
        var connection = Self.serving()
        _ = connection.requestEnded()
        let readPassed = connection.readRequested(bufferedBytes: false)
        #expect(readPassed)
    }

    @Test func anUpstreamThatCannotTakeMoreStopsDecodingAndReadsUntilItCan() {
        var connection = Self.serving(hasBody: true)
        connection.setUpstreamBlocked(true)
        #expect(!connection.mayDecode)
        let readPassed = connection.readRequested(bufferedBytes: false)
        #expect(!readPassed)
        connection.setUpstreamBlocked(false)
        #expect(connection.mayDecode)
        let readResumed = connection.resumeReads(bufferedBytes: false)
        #expect(readResumed)
    }

    @Test func connectionCloseFromTheClientClosesAfterTheResponse() {
        var connection = Self.serving(keepAlive: false)
        _ = connection.requestEnded()
        let plan = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(1), draining: false)
        #expect(plan?.connectionField == .close)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flushAndClose)
        #expect(connection.isClosed)
        #expect(!connection.mayDecode)
    }

    @Test func anHTTP10ClientIsToldKeepAliveAndGetsAnUnframedBodyEndedByTheClose() {
        var keptAlive = Self.serving(version: .http1_0)
        let plan2 = keptAlive.responseHeadStarting(status: 200, bodyFraming: .contentLength(3), draining: false)
        #expect(plan2?
            .connectionField == .keepAlive)

        var unframed = Self.serving(version: .http1_0)
        let plan = unframed.responseHeadStarting(status: 200, bodyFraming: .chunked, draining: false)
        #expect(plan == .init(chunked: false, connectionField: .close))
        _ = unframed.requestEnded()
        let afterResponse = unframed.responseEnded()
        #expect(afterResponse == .flushAndClose)
    }

    @Test func anHTTP11ResponseWithoutLengthIsChunked() {
        var connection = Self.serving()
        let plan = connection.responseHeadStarting(status: 200, bodyFraming: .untilClose, draining: false)
        #expect(plan == .init(chunked: true, connectionField: .omitted))
        #expect(connection.exchange?.chunkedResponse == true)
    }

    // MARK: the upstream answers early; the client leaves

    @Test func aResponseBeforeTheRequestEndsKeepsReadingTheBodyThenCompletes() {
        var connection = Self.serving(hasBody: true)
        _ = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(2), draining: false)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flush(requestComplete: false))
        #expect(connection.mayDecode, "the rest of the body is still read")
        #expect(connection.bodyHasAReader)
        let end = connection.requestEnded()
        #expect(end == .forwardAndComplete)
        #expect(connection.state == .idle)
        let next = connection.requestCompleted(bufferedBytes: false)
        #expect(next == .decode)
    }

    @Test func theClientGoingAwayMidBodyIsLoggedAsADownstreamDisconnect() {
        var connection = Self.serving(hasBody: true)
        let inactive = connection.channelInactive()
        #expect(inactive == .logDownstreamDisconnect)
        #expect(connection.isClosed)
    }

    @Test func theClientGoingAwayMidResponseIsADisconnectButAfterItIsNothing() {
        var midResponse = Self.serving()
        _ = midResponse.requestEnded()
        _ = midResponse.responseHeadStarting(status: 200, bodyFraming: .chunked, draining: false)
        let inactive = midResponse.channelInactive()
        #expect(inactive == .logDownstreamDisconnect)

        var answered = Self.serving()
        _ = answered.requestEnded()
        _ = answered.responseHeadStarting(status: 200, bodyFraming: .none, draining: false)
        _ = answered.responseEnded()
        let inactive2 = answered.channelInactive()
        #expect(inactive2 == .none)
    }

    @Test func anUpstreamFailureAfterTheResponseBeganClosesWithoutAReply() {
        var connection = Self.serving()
        _ = connection.requestEnded()
        _ = connection.responseHeadStarting(status: 200, bodyFraming: .chunked, draining: false)
        let reply = connection.localReply(closeConnection: false)
        #expect(reply == .abort)
        let aborted = connection.responseAborted()
        #expect(aborted)
        #expect(connection.isClosed)
        let inactive = connection.channelInactive()
        #expect(inactive == .none, "the abort already wrote the request's log line")
    }

    // MARK: local replies

    @Test func aLocalReplyBeforeAnUnreadBodyClosesTheConnectionAfterIt() {
        var connection = Self.serving(hasBody: true)
        let reply = connection.localReply(closeConnection: false)
        #expect(reply == .send)
        #expect(connection.exchange?.keepAlive == false)
        let plan = connection.responseHeadStarting(status: 403, bodyFraming: .contentLength(19), draining: false)
        #expect(plan?
            .connectionField == .close)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flushAndClose)
    }

    @Test func aLocalReplyToABodylessRequestKeepsTheConnection() {
        var connection = Self.serving()
        let reply = connection.localReply(closeConnection: false)
        #expect(reply == .send)
        _ = connection.responseHeadStarting(status: 404, bodyFraming: .contentLength(0), draining: false)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flush(requestComplete: false))
        let end = connection.requestEnded()
        #expect(end == .forwardAndComplete)
    }

    @Test func aHeadThatFailsToDecodeIsAnsweredAndEndsTheConnection() {
        var connection = Connection(sniffsPreface: false)
        let reply = connection.unfinishedRequest()
        #expect(reply == .send)
        #expect(connection.exchange?.keepAlive == false)
        _ = connection.responseHeadStarting(status: 400, bodyFraming: .contentLength(11), draining: false)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flushAndClose)
    }

    @Test func aBodyThatFailsToDecodeAfterTheResponseBeganOnlyCloses() {
        var connection = Self.serving(hasBody: true)
        _ = connection.responseHeadStarting(status: 200, bodyFraming: .chunked, draining: false)
        let reply = connection.unfinishedRequest()
        #expect(reply == .abort)
    }

    // MARK: 100-continue

    @Test func continueIsSentOnlyToAnHTTP11ClientThatAskedAndOnlyWhenForwarding() {
        #expect(Self.serving(hasBody: true, expectsContinue: true).forwarding())
        #expect(!Self.serving(hasBody: true).forwarding())
        #expect(!Self.serving(version: .http1_0, hasBody: true, expectsContinue: true).forwarding())
    }

    @Test func aDrainDuringContinueStillTakesTheBodyAndThenCloses() {
        var connection = Self.serving(hasBody: true, expectsContinue: true)
        let drain = connection.quiesce(bufferedBytes: false)
        #expect(drain == .finishFirst)
        #expect(connection.forwarding(), "the client was promised its body is wanted: 100 still goes out")
        #expect(connection.mayDecode)
        let end = connection.requestEnded()
        #expect(end == .forward)
        let plan = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(2), draining: false)
        #expect(plan?
            .connectionField == .close)
        let afterResponse = connection.responseEnded()
        #expect(afterResponse == .flushAndClose)
    }

    // MARK: drain

    @Test func aDrainClosesAnIdleConnectionAtOnce() {
        var connection = Connection(sniffsPreface: false)
        let drain = connection.quiesce(bufferedBytes: false)
        #expect(drain == .close)
        #expect(connection.isClosed)
    }

    @Test func aDrainLetsABufferedHalfRequestArriveAndBeAnsweredWithClose() {
        var connection = Connection(sniffsPreface: false)
        let drain = connection.quiesce(bufferedBytes: true)
        #expect(drain == .finishFirst)
        connection.requestHeadReceived(version: .http1_1, keepAlive: true, hasBody: false, expectsContinue: false,
                                       draining: false)
        #expect(connection.exchange?.keepAlive == false)
    }

    @Test func aGatewayDrainTurnsKeepAliveOffForNewRequestsAndResponses() {
        #expect(Self.serving(draining: true).exchange?.keepAlive == false)
        var connection = Self.serving()
        let plan = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(1), draining: true)
        #expect(plan?
            .connectionField == .close)
    }

    @Test func aDrainedKeepAliveConnectionClosesAfterItsLastRequestUnlessBytesWait() {
        var connection = Self.serving()
        _ = connection.requestEnded()
        _ = connection.responseHeadStarting(status: 200, bodyFraming: .contentLength(1), draining: false)
        _ = connection.responseEnded()
        _ = connection.quiesce(bufferedBytes: true)
        let next = connection.requestCompleted(bufferedBytes: true)
        #expect(next == .decode)
        let next2 = connection.requestCompleted(bufferedBytes: false)
        #expect(next2 == .close)
        #expect(connection.isClosed)
    }

    // MARK: upgrade

    @Test func aTunnelPassesBytesAndHoldsReadsOnlyForUpstreamBackPressure() {
        var connection = Self.serving()
        _ = connection.responseHeadStarting(status: 101, bodyFraming: .untilClose, draining: false)
        connection.tunnelStarted()
        #expect(connection.state == .tunnel)
        #expect(connection.bytesArrived() == .tunnel)
        #expect(!connection.mayDecode, "a pipelined request behind a tunnel is tunnel bytes, never decoded")
        #expect(!connection.holdsReads(bufferedBytes: true))
        connection.setUpstreamBlocked(true)
        #expect(connection.holdsReads(bufferedBytes: false))
    }

    @Test func aSwitchingProtocolsHeadSaysNothingAboutKeepAlive() {
        var connection = Self.serving(keepAlive: false)
        let plan = connection.responseHeadStarting(status: 101, bodyFraming: .untilClose, draining: false)
        #expect(plan?
            .connectionField == .omitted)
    }

    @Test func eitherSideEndingTheTunnelLogsItOnce() {
        var clientEnds = Self.serving()
        clientEnds.tunnelStarted()
        let inactive = clientEnds.channelInactive()
        #expect(inactive == .logTunnelClosed)

        var upstreamEnds = Self.serving()
        upstreamEnds.tunnelStarted()
        let tunnelEnd = upstreamEnds.tunnelClosedByUpstream()
        #expect(tunnelEnd == .logAndClose)
        let tunnelEnd2 = upstreamEnds.tunnelClosedByUpstream()
        #expect(tunnelEnd2 == .none)
        let inactive2 = upstreamEnds.channelInactive()
        #expect(inactive2 == .none)
    }

    @Test func aDrainLeavesAnOpenTunnelToFinish() {
        var connection = Self.serving()
        connection.tunnelStarted()
        let drain = connection.quiesce(bufferedBytes: false)
        #expect(drain == .finishFirst)
        #expect(connection.state == .tunnel)
    }

    // MARK: HTTP/2 with prior knowledge

    @Test func aPlainPortWaitsForEnoughBytesToRuleThePrefaceInOrOut() {
        var connection = Connection(sniffsPreface: true)
        #expect(connection.bytesArrived() == .checkPreface)
        let preface = connection.prefaceChecked(.needMoreBytes)
        #expect(preface == .waitForMoreBytes)
        let preface2 = connection.prefaceChecked(.http1)
        #expect(preface2 == .decode)
        #expect(connection.bytesArrived() == .decode)
    }

    @Test func aPrefaceHandsTheConnectionOverWithTheReadItWasOwed() {
        var connection = Connection(sniffsPreface: true)
        let readPassed = connection.readRequested(bufferedBytes: false)
        #expect(readPassed)
        connection.setUpstreamBlocked(true)  // any reason to hold: the read becomes owed
        let readPassed2 = connection.readRequested(bufferedBytes: true)
        #expect(!readPassed2)
        let preface = connection.prefaceChecked(.http2)
        #expect(preface == .switchToHTTP2(owedRead: true))
        #expect(connection.bytesArrived() == .passThrough)
        #expect(!connection.readPending)
        let idle = connection.idleTimerFired(quietPeriodElapsed: true)
        #expect(idle == .none)
    }

    // MARK: timers

    @Test func theIdleTimerClosesOnlyAQuietConnectionWithNothingInProgress() {
        var quiet = Connection(sniffsPreface: false)
        let idle = quiet.idleTimerFired(quietPeriodElapsed: false)
        #expect(idle == .rearm)
        let idle2 = quiet.idleTimerFired(quietPeriodElapsed: true)
        #expect(idle2 == .close)
        #expect(quiet.isClosed)
        let idle3 = quiet.idleTimerFired(quietPeriodElapsed: true)
        #expect(idle3 == .none)

        var busy = Self.serving()
        let idle4 = busy.idleTimerFired(quietPeriodElapsed: true)
        #expect(idle4 == .extend)
        busy.tunnelStarted()
        let idle5 = busy.idleTimerFired(quietPeriodElapsed: true)
        #expect(idle5 == .extend)
    }

    @Test func aHeadThatTimesOutIsAnswered408OnlyWhenNoRequestIsInProgress() {
        var waiting = Connection(sniffsPreface: true)
        let timeout = waiting.headersTimedOut()
        #expect(timeout == .send)
        #expect(waiting.exchange?.keepAlive == false)

        var busy = Self.serving()
        let timeout2 = busy.headersTimedOut()
        #expect(timeout2 == .ignore)
        #expect(busy.exchange?.keepAlive == true)
    }

    @Test func closingTwiceIsOneClose() {
        var connection = Connection(sniffsPreface: false)
        let closed = connection.close()
        #expect(closed)
        let closed2 = connection.close()
        #expect(!closed2)
        #expect(connection.bytesArrived() == .discard)
        #expect(connection.holdsReads(bufferedBytes: false))
    }
}
