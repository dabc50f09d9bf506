@testable import GatehouseProxy
import GatehouseUpstream
import Testing

@Suite struct CircuitBreakerTests {
    @Test func requestsOverTheLimitAreRefusedUntilOneEnds() {
        let breaker = ClusterCircuitBreaker(limits: CircuitBreakerLimits(maxRequests: 2))
        #expect(breaker.beginRequest() && breaker.beginRequest())
        #expect(!breaker.beginRequest(), "a third in flight overflows")
        #expect(breaker.requestsInFlight == 2, "a refusal takes no slot")
        breaker.endRequest()
        #expect(breaker.beginRequest())
    }

    @Test func pendingIsCountedApartFromRequests() {
        let breaker = ClusterCircuitBreaker(limits: CircuitBreakerLimits(maxPendingRequests: 1))
        #expect(breaker.beginPending())
        #expect(!breaker.beginPending())
        #expect((0..<100).allSatisfy { _ in breaker.beginRequest() }, "no request limit was set")
        breaker.endPending()
        #expect(breaker.beginPending())
    }

    @Test func connectionsHaveTheirOwnCountAndMayBeForcedOverIt() {
        let breaker = ClusterCircuitBreaker(limits: CircuitBreakerLimits(maxConnections: 1))
        #expect(breaker.beginConnection())
        #expect(!breaker.beginConnection())
        breaker.forceConnection()
        #expect(breaker.connectionsOpen == 2, "a connection made over the limit still counts")
        breaker.endConnection()
        #expect(!breaker.beginConnection(), "still at the limit after one of two closed")
        breaker.endConnection()
        #expect(breaker.beginConnection())
        #expect(breaker.beginRequest() && breaker.beginPending(), "no request or pending limit was set")
    }

    @Test func racingLoopsNeverTakeMoreSlotsThanTheLimit() async {
        let breaker = ClusterCircuitBreaker(limits: CircuitBreakerLimits(maxRequests: 10))
        let taken = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<1_000).reduce(0) { count, _ in count + (breaker.beginRequest() ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        #expect(taken == 10)
        #expect(breaker.requestsInFlight == 10)
    }
}
