import GatehouseUpstream
import Testing

/// Seconds on an injected clock.
private func at(_ seconds: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: seconds * 1_000_000_000) }

private func fail(_ detector: inout OutlierDetector, _ endpoint: Int, times: Int, status: Int = 500,
                  now: MonotonicInstant = at(0)) -> [OutlierDetector.Event] {
    (0..<times).compactMap { _ in detector.record(.response(status: status), endpoint: endpoint, now: now) }
}

@Suite struct OutlierDetectorTests {
    @Test func fiveServerErrorsInARowEjectAtOnce() {
        var detector = OutlierDetector(policy: OutlierPolicy(), endpoints: 4)
        #expect(fail(&detector, 1, times: 4).isEmpty)
        #expect(detector.record(.response(status: 503), endpoint: 1, now: at(0))
                == .ejected(endpoint: 1, duration: .seconds(30), reason: .consecutive5xx))
        #expect(detector.isEjected(1) && detector.ejectedCount == 1)
        #expect(!detector.isEjected(0))
    }

    @Test func aSuccessBreaksTheRun() {
        var detector = OutlierDetector(policy: OutlierPolicy(), endpoints: 2)
        #expect(fail(&detector, 0, times: 4).isEmpty)
        #expect(detector.record(.response(status: 404), endpoint: 0, now: at(0)) == nil, "a 4xx is not a server error")
        #expect(fail(&detector, 0, times: 4).isEmpty)
        #expect(!detector.isEjected(0))
    }

    @Test func gatewayErrorsCountOnlyBadGatewaysAndTimeoutsAndFailures() {
        var detector = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 0, consecutiveGatewayErrors: 3), endpoints: 2)
        #expect(fail(&detector, 0, times: 2, status: 502).isEmpty)
        #expect(detector.record(.response(status: 500), endpoint: 0, now: at(0)) == nil, "a 500 ends a gateway-error run")
        #expect(fail(&detector, 0, times: 2, status: 504).isEmpty)
        #expect(detector.record(.localOriginFailure, endpoint: 0, now: at(0))
                == .ejected(endpoint: 0, duration: .seconds(30), reason: .consecutiveGatewayErrors))
    }

    @Test func localOriginFailuresCountAsServerErrors() {
        var detector = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 2), endpoints: 2)
        #expect(detector.record(.localOriginFailure, endpoint: 0, now: at(0)) == nil)
        #expect(detector.record(.localOriginFailure, endpoint: 0, now: at(0))
                == .ejected(endpoint: 0, duration: .seconds(30), reason: .consecutive5xx))
    }

    @Test func bothCountersOffNeverEject() {
        var detector = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 0, consecutiveGatewayErrors: 0), endpoints: 1)
        #expect(fail(&detector, 0, times: 100, status: 503).isEmpty)
        #expect(!detector.isEjected(0))
    }

    @Test func anEjectedEndpointReturnsAtTheFirstSweepAfterItsTime() {
        var detector = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 1), endpoints: 2)
        #expect(detector.record(.localOriginFailure, endpoint: 0, now: at(5)) != nil)
        #expect(detector.sweep(now: at(10)).isEmpty)
        #expect(detector.sweep(now: at(30)).isEmpty, "ejected at 5 s for 30 s")
        #expect(detector.record(.response(status: 500), endpoint: 0, now: at(31)) == nil, "results while ejected change nothing")
        #expect(detector.sweep(now: at(40)) == [.returned(endpoint: 0)])
        #expect(!detector.isEjected(0) && detector.ejectedCount == 0)
    }

    @Test func repeatedEjectionsLastLongerUpToTheCapAndAreForgivenOnePerHealthySweep() {
        let policy = OutlierPolicy(consecutive5xxErrors: 1, interval: .seconds(10), baseEjectionTime: .seconds(100),
                                   maxEjectionTime: .seconds(250))
        var detector = OutlierDetector(policy: policy, endpoints: 1)
        var now: Int64 = 0
        var durations: [Duration] = []
        for _ in 0..<4 {
            if case .ejected(_, let duration, _)? = detector.record(.localOriginFailure, endpoint: 0, now: at(now)) {
                durations.append(duration)
            }
            now += 1_000
            #expect(detector.sweep(now: at(now)) == [.returned(endpoint: 0)])
        }
        #expect(durations == [.seconds(100), .seconds(200), .seconds(250), .seconds(250)])
        // Three healthy sweeps take the count from 3 back to 0: the next ejection is the base time again.
        for _ in 0..<3 {
            now += 10
            _ = detector.sweep(now: at(now))
        }
        #expect(detector.record(.localOriginFailure, endpoint: 0, now: at(now))
                == .ejected(endpoint: 0, duration: .seconds(100), reason: .consecutive5xx))
    }

    @Test func maxEjectionPercentLimitsEjectionsButOneIsAlwaysAllowed() {
        var few = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 10), endpoints: 3)
        #expect(few.record(.localOriginFailure, endpoint: 0, now: at(0)) != nil, "one of three is 33 %, yet allowed")
        #expect(few.record(.localOriginFailure, endpoint: 1, now: at(0)) == .ejectionSkipped(endpoint: 1, reason: .consecutive5xx))
        #expect(few.ejectedCount == 1)

        var many = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 10), endpoints: 20)
        let outcomes = (0..<3).map { many.record(.localOriginFailure, endpoint: $0, now: at(0)) }
        #expect(outcomes.map { if case .ejected? = $0 { true } else { false } } == [true, true, false], "10 % of 20 is 2")
    }

    @Test func belowMinHealthPercentTheClusterPanics() {
        var detector = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50),
                                       endpoints: 4)
        _ = detector.record(.localOriginFailure, endpoint: 0, now: at(0))
        _ = detector.record(.localOriginFailure, endpoint: 1, now: at(0))
        #expect(!detector.isPanicking, "2 of 4 healthy is 50 %")
        _ = detector.record(.localOriginFailure, endpoint: 2, now: at(0))
        #expect(detector.isPanicking)
        var istioDefault = OutlierDetector(policy: OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 100), endpoints: 1)
        _ = istioDefault.record(.localOriginFailure, endpoint: 0, now: at(0))
        #expect(istioDefault.isEjected(0) && !istioDefault.isPanicking, "minHealthPercent 0 never panics")
    }
}
