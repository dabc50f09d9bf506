import Testing
@testable import GatehouseUpstream

/// Which try results each `retryOn` condition retries, Istio's default policy, the back-off Envoy
/// draws, and how a request's retries are counted and flagged.
@Suite struct RetryPolicyTests {
    static func policy(_ conditions: RetryPolicy.Conditions, codes: [Int] = [], retries: Int = 2) -> RetryPolicy {
        RetryPolicy(retries: retries, conditions: conditions, statusCodes: codes)
    }

    static func response(_ status: Int, grpc: Int? = nil, rateLimited: Bool = false) -> RetryPolicy.TryResult {
        .response(status: status, grpcStatus: grpc, rateLimited: rateLimited)
    }

    @Test func istiosDefaultRetriesConnectFailuresRefusedStreams503AndGRPCUnavailableOrCancelledOnly() {
        let policy = RetryPolicy.istioDefault
        #expect(policy.retries == 2)
        #expect(policy.retries(.connectFailure))
        #expect(policy.retries(.refusedStream))
        #expect(policy.retries(Self.response(503)))
        #expect(policy.retries(Self.response(200, grpc: 14)))
        #expect(policy.retries(Self.response(200, grpc: 1)))
        #expect(!policy.retries(Self.response(500)), "a 500 is the application's answer")
        #expect(!policy.retries(Self.response(502)))
        #expect(!policy.retries(Self.response(200, grpc: 13)))
        #expect(!policy.retries(.reset), "a reset after the request left may have been processed")
        #expect(!policy.retries(.perTryTimeout))
        #expect(policy.avoidsPreviousHosts(consistentHash: false))
        #expect(!policy.avoidsPreviousHosts(consistentHash: true), "a hashed request stays with its endpoint")
    }

    @Test func fiveXXRetriesEveryServerErrorAndEveryResultWithoutAResponse() {
        let policy = Self.policy(.fiveXX)
        for status in [500, 501, 502, 503, 504, 599] { #expect(policy.retries(Self.response(status))) }
        for status in [200, 404, 409, 429] { #expect(!policy.retries(Self.response(status))) }
        for result in [RetryPolicy.TryResult.connectFailure, .refusedStream, .reset, .perTryTimeout] {
            #expect(policy.retries(result))
        }
    }

    @Test func gatewayErrorIsOnly502503And504AmongResponses() {
        let policy = Self.policy(.gatewayError)
        #expect(policy.retries(Self.response(502)) && policy.retries(Self.response(503)) && policy.retries(Self.response(504)))
        #expect(!policy.retries(Self.response(500)))
        #expect(policy.retries(.reset) && policy.retries(.connectFailure) && policy.retries(.perTryTimeout))
    }

    @Test func narrowConditionsRetryOnlyTheirOwnResult() {
        #expect(Self.policy(.connectFailure).retries(.connectFailure))
        #expect(!Self.policy(.connectFailure).retries(.reset))
        #expect(!Self.policy(.connectFailure).retries(Self.response(503)))
        #expect(Self.policy(.resetBeforeRequest).retries(.connectFailure))
        #expect(!Self.policy(.resetBeforeRequest).retries(.reset))
        #expect(Self.policy(.reset).retries(.reset) && Self.policy(.reset).retries(.perTryTimeout))
        #expect(!Self.policy(.reset).retries(Self.response(503)))
        #expect(Self.policy(.refusedStream).retries(.refusedStream) && !Self.policy(.refusedStream).retries(.reset))
        #expect(Self.policy(.retriable4xx).retries(Self.response(409)) && !Self.policy(.retriable4xx).retries(Self.response(400)))
        #expect(Self.policy(.envoyRateLimited).retries(Self.response(429, rateLimited: true)))
        #expect(!Self.policy(.envoyRateLimited).retries(Self.response(429)))
        #expect(Self.policy(.grpcDeadlineExceeded).retries(Self.response(200, grpc: 4)))
        #expect(Self.policy(.grpcResourceExhausted).retries(Self.response(200, grpc: 8)))
        #expect(Self.policy(.grpcInternal).retries(Self.response(200, grpc: 13)))
        #expect(!Self.policy(.grpcInternal).retries(Self.response(200, grpc: 0)))
    }

    @Test func retriableStatusCodesAreTheListedOnesOnlyAndOnlyWithTheCondition() {
        let policy = Self.policy(.retriableStatusCodes, codes: [429, 503])
        #expect(policy.retries(Self.response(429)) && policy.retries(Self.response(503)))
        #expect(!policy.retries(Self.response(502)))
        #expect(!Self.policy([], codes: [503]).retries(Self.response(503)))
    }

    @Test func backOffIsDrawnUnderTheExponentialCeilingAndCappedAtTenTimesTheBase() {
        let policy = Self.policy(.fiveXX)
        let base = RetryPolicy.defaultBackoffBaseNanoseconds
        // The largest draw shows each retry's ceiling: base, 3 × base, 7 × base, then the 10 × base cap.
        let ceilings = (1...5).map { policy.backoffNanoseconds(retry: $0, draw: UInt64.max) }
        #expect(ceilings[0] < base)
        #expect(ceilings[1] >= base && ceilings[1] < 3 * base)
        #expect(ceilings[2] >= 3 * base && ceilings[2] < 7 * base)
        #expect(ceilings[3] <= 10 * base && ceilings[4] <= 10 * base)
        #expect(policy.backoffNanoseconds(retry: 1, draw: 0) == 0)
        #expect(policy.backoffNanoseconds(retry: 1000, draw: 12_345) <= 10 * base, "no overflow on a long retry count")
    }

    @Test func aRequestRetriesAsOftenAsThePolicySaysThenFlagsTheLimit() {
        var state = RetryState(policy: Self.policy(.connectFailure, retries: 2))
        #expect(state.decide(.connectFailure, replayable: true, claimRetry: { true }) == .retry(number: 1))
        #expect(state.decide(.connectFailure, replayable: true, claimRetry: { true }) == .retry(number: 2))
        #expect(!state.canStillRetry)
        #expect(state.decide(.connectFailure, replayable: true, claimRetry: { true }) == .stop)
        #expect(state.limitReached && !state.overflowed)
    }

    @Test func aResultThePolicyDoesNotRetryLeavesNoFlag() {
        var state = RetryState(policy: Self.policy(.connectFailure, retries: 0 + 1))
        #expect(state.decide(.reset, replayable: true, claimRetry: { true }) == .stop)
        #expect(!state.limitReached && state.retriesMade == 0)
    }

    @Test func aBodyThatCouldNotBeKeptStopsRetriesWithoutAFlag() {
        var state = RetryState(policy: Self.policy(.reset))
        var asked = false
        #expect(state.decide(.reset, replayable: false, claimRetry: { asked = true; return true }) == .stop)
        #expect(!state.limitReached && !state.overflowed && !asked)
    }

    @Test func theCircuitBreakerRefusingARetryIsAnOverflowAndTheResultStands() {
        var state = RetryState(policy: Self.policy(.reset))
        #expect(state.decide(.reset, replayable: true, claimRetry: { false }) == .stop)
        #expect(state.overflowed && state.retriesMade == 0)
    }

    @Test func zeroRetriesIsNoPolicy() {
        let state = RetryState(policy: Self.policy(.fiveXX, retries: 0))
        #expect(state.policy == nil && !state.canStillRetry)
    }
}
