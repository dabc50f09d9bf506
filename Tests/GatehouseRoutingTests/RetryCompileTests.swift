import GatehouseUpstream
import Testing
@testable import GatehouseConfig
@testable import GatehouseSnapshot

/// `retries` as Istio hands them to Envoy (pilot route/retry/retry.go): the default policy when none
/// is written, nothing with `attempts: 0`, and a written `retryOn` replacing the default conditions.
@Suite struct RetryCompileTests {
    @Test func noRetriesWrittenIsIstiosDefaultPolicy() {
        #expect(RouteCompiler.retryPolicy(nil) == .istioDefault)
    }

    @Test func zeroAttemptsTurnsRetriesOff() {
        #expect(RouteCompiler.retryPolicy(HTTPRetry(attempts: 0)) == nil)
        #expect(RouteCompiler.retryPolicy(HTTPRetry(attempts: 0, retryOn: "5xx")) == nil)
    }

    @Test func attemptsAloneKeepsTheDefaultConditions() throws {
        let policy = try #require(RouteCompiler.retryPolicy(HTTPRetry(attempts: 5)))
        #expect(policy.retries == 5)
        #expect(policy.conditions == RetryPolicy.istioDefault.conditions && policy.statusCodes == [503])
    }

    @Test func retryOnReplacesConditionsAndStatusCodesAndABareCodeTurnsOnRetriableStatusCodes() throws {
        let policy = try #require(RouteCompiler.retryPolicy(HTTPRetry(attempts: 3, perTryTimeout: .seconds(2),
                                                                      retryOn: "gateway-error, connect-failure,429,409",
                                                                      retryIgnorePreviousHosts: false,
                                                                      backoff: .seconds(1))))
        #expect(policy.conditions == [.gatewayError, .connectFailure, .retriableStatusCodes])
        #expect(policy.statusCodes == [429, 409])
        #expect(policy.perTryTimeoutNanoseconds == 2_000_000_000)
        #expect(policy.backoffBaseNanoseconds == 1_000_000_000)
        #expect(policy.avoidsPreviousHosts == false)
        #expect(!policy.avoidsPreviousPriorities)
        #expect(RouteCompiler.retryPolicy(HTTPRetry(attempts: 1, retryRemoteLocalities: true))?.avoidsPreviousPriorities == true)
        let noCodes = try #require(RouteCompiler.retryPolicy(HTTPRetry(attempts: 1, retryOn: "5xx")))
        #expect(noCodes.statusCodes.isEmpty && noCodes.conditions == .fiveXX, "the default 503 goes with the default conditions")
    }

    @Test func aNumberGoKnowsNoStatusTextForIsAConditionNameNotACode() {
        let parsed = HTTPRetry.parseRetryOn("599,503, ,5xx")
        #expect(parsed.statusCodes == [503])
        #expect(parsed.conditions == ["599", "5xx"])
    }
}
