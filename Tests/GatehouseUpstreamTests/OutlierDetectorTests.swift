import GatehouseUpstream
import Testing

/// Seconds on an injected clock.
private func at(_ seconds: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: seconds * 1_000_000_000) }

/// A detector created at 0 s: with the default 10 s interval, sweeps fall at 10, 20, 30… s.
private func detector(_ policy: OutlierPolicy = OutlierPolicy(), endpoints: Int) -> OutlierDetector {
    OutlierDetector(policy: policy, endpoints: endpoints, now: at(0))
}

private func fail(_ detector: inout OutlierDetector, _ endpoint: Int, times: Int, status: Int = 500,
                  now: MonotonicInstant = at(0)) -> [OutlierDetector.Event] {
    (0..<times).flatMap { _ in detector.record(.response(status: status), endpoint: endpoint, now: now) }
}

@Suite struct OutlierDetectorTests {
    @Test func fiveServerErrorsInARowEjectAtOnce() {
        var outliers = detector(endpoints: 4)
        #expect(fail(&outliers, 1, times: 4).isEmpty)
        #expect(outliers.record(.response(status: 503), endpoint: 1, now: at(0))
                == [.ejected(endpoint: 1, duration: .seconds(30), reason: .consecutive5xx)])
        #expect(outliers.isEjected(1) && outliers.ejectedCount == 1)
        #expect(!outliers.isEjected(0))
    }

    @Test func aSuccessBreaksTheRun() {
        var outliers = detector(endpoints: 2)
        #expect(fail(&outliers, 0, times: 4).isEmpty)
        #expect(outliers.record(.response(status: 404), endpoint: 0, now: at(0)).isEmpty, "a 4xx is not a server error")
        #expect(fail(&outliers, 0, times: 4).isEmpty)
        #expect(!outliers.isEjected(0))
    }

    @Test func gatewayErrorsCountOnlyBadGatewaysAndTimeoutsAndFailures() {
        var outliers = detector(OutlierPolicy(consecutive5xxErrors: 0, consecutiveGatewayErrors: 3), endpoints: 2)
        #expect(fail(&outliers, 0, times: 2, status: 502).isEmpty)
        #expect(outliers.record(.response(status: 500), endpoint: 0, now: at(0)).isEmpty, "a 500 ends a gateway-error run")
        #expect(fail(&outliers, 0, times: 2, status: 504).isEmpty)
        #expect(outliers.record(.localOriginFailure, endpoint: 0, now: at(0))
                == [.ejected(endpoint: 0, duration: .seconds(30), reason: .consecutiveGatewayErrors)])
    }

    @Test func localOriginFailuresCountAsServerErrors() {
        var outliers = detector(OutlierPolicy(consecutive5xxErrors: 2), endpoints: 2)
        #expect(outliers.record(.localOriginFailure, endpoint: 0, now: at(0)).isEmpty)
        #expect(outliers.record(.localOriginFailure, endpoint: 0, now: at(0))
                == [.ejected(endpoint: 0, duration: .seconds(30), reason: .consecutive5xx)])
    }

    @Test func bothCountersOffNeverEject() {
        var outliers = detector(OutlierPolicy(consecutive5xxErrors: 0, consecutiveGatewayErrors: 0), endpoints: 1)
        #expect(fail(&outliers, 0, times: 100, status: 503).isEmpty)
        #expect(!outliers.isEjected(0))
    }

    @Test func anEjectedEndpointReturnsAtTheFirstSweepAfterItsTime() {
        var outliers = detector(OutlierPolicy(consecutive5xxErrors: 1), endpoints: 2)
        #expect(!outliers.record(.localOriginFailure, endpoint: 0, now: at(5)).isEmpty)
        #expect(outliers.refresh(now: at(35)).isEmpty, "ejected at 5 s for 30 s: back at the 40 s sweep")
        #expect(outliers.record(.response(status: 500), endpoint: 0, now: at(36)).isEmpty, "results while ejected change nothing")
        #expect(outliers.refresh(now: at(39)).isEmpty)
        #expect(outliers.refresh(now: at(41)) == [.returned(endpoint: 0)])
        #expect(!outliers.isEjected(0) && outliers.ejectedCount == 0)
        #expect(outliers.refresh(now: at(100)).isEmpty, "returned once")
    }

    @Test func repeatedEjectionsLastLongerUpToTheCap() {
        let policy = OutlierPolicy(consecutive5xxErrors: 1, interval: .seconds(10), baseEjectionTime: .seconds(100),
                                   maxEjectionTime: .seconds(250))
        var outliers = detector(policy, endpoints: 1)
        var now: Int64 = 0
        var durations: [Duration] = []
        for _ in 0..<4 {
            // Failing again the moment it returns: no sweep has forgiven it.
            guard case .ejected(_, let duration, _)? = outliers.record(.localOriginFailure, endpoint: 0, now: at(now)).last else {
                Issue.record("not ejected at \(now) s")
                return
            }
            durations.append(duration)
            now += duration.components.seconds
            #expect(outliers.refresh(now: at(now)) == [.returned(endpoint: 0)])
        }
        #expect(durations == [.seconds(100), .seconds(200), .seconds(250), .seconds(250)])
    }

    @Test func eachSweepInServiceForgivesOneEjection() {
        let policy = OutlierPolicy(consecutive5xxErrors: 1, interval: .seconds(10), baseEjectionTime: .seconds(100),
                                   maxEjectionTime: .seconds(250))
        func nextEjection(afterSweepsInService sweeps: Int64) -> Duration? {
            var outliers = detector(policy, endpoints: 1)
            _ = outliers.record(.localOriginFailure, endpoint: 0, now: at(0))    // count 1, back at 100 s
            _ = outliers.refresh(now: at(100))
            _ = outliers.record(.localOriginFailure, endpoint: 0, now: at(100))  // count 2, back at 300 s
            _ = outliers.refresh(now: at(300))
            guard case .ejected(_, let duration, _)? = outliers.record(.localOriginFailure, endpoint: 0,
                                                                         now: at(300 + sweeps * 10)).last else { return nil }
            return duration
        }
        #expect(nextEjection(afterSweepsInService: 0) == .seconds(250))
        #expect(nextEjection(afterSweepsInService: 1) == .seconds(200))
        #expect(nextEjection(afterSweepsInService: 2) == .seconds(100))
        #expect(nextEjection(afterSweepsInService: 50) == .seconds(100))
    }

    @Test func maxEjectionPercentLimitsEjectionsButOneIsAlwaysAllowed() {
        var few = detector(OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 10), endpoints: 3)
        #expect(!few.record(.localOriginFailure, endpoint: 0, now: at(0)).isEmpty, "one of three is 33 %, yet allowed")
        #expect(few.record(.localOriginFailure, endpoint: 1, now: at(0)) == [.ejectionSkipped(endpoint: 1, reason: .consecutive5xx)])
        #expect(few.ejectedCount == 1)

        var many = detector(OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 10), endpoints: 20)
        let outcomes = (0..<3).map { many.record(.localOriginFailure, endpoint: $0, now: at(0)).last }
        #expect(outcomes.map { if case .ejected? = $0 { true } else { false } } == [true, true, false], "10 % of 20 is 2")
    }

    @Test func belowMinHealthPercentTheClusterPanics() {
        var outliers = detector(OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50), endpoints: 4)
        _ = outliers.record(.localOriginFailure, endpoint: 0, now: at(0))
        _ = outliers.record(.localOriginFailure, endpoint: 1, now: at(0))
        #expect(!outliers.isPanicking, "2 of 4 healthy is 50 %")
        _ = outliers.record(.localOriginFailure, endpoint: 2, now: at(0))
        #expect(outliers.isPanicking)
        var istioDefault = detector(OutlierPolicy(consecutive5xxErrors: 1, maxEjectionPercent: 100), endpoints: 1)
        _ = istioDefault.record(.localOriginFailure, endpoint: 0, now: at(0))
        #expect(istioDefault.isEjected(0) && !istioDefault.isPanicking, "minHealthPercent 0 never panics")
    }
}
