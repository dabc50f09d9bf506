import Testing
@testable import GatehouseConfig
@testable import GatehouseRouting
@testable import GatehouseSnapshot

/// `fault` as Istio hands it to Envoy: percentages in parts per million, nothing without one.
@Suite struct FaultInjectionTests {
    @Test func percentagesBecomePartsPerMillionAndTheDeprecatedIntegerIsAFallback() throws {
        let spec = HTTPFaultInjection(
            delay: .init(fixedDelay: ConfigDuration.seconds(2), percentage: .init(value: 0.1)),
            abort: .init(httpStatus: 503, percentage: .init(value: 12.5)))
        let fault = try #require(RouteCompiler.fault(spec))
        #expect(fault.delayPerMillion == 1_000 && fault.abortPerMillion == 125_000)
        #expect(fault.delayNanoseconds == 2_000_000_000 && fault.abortWith == .httpStatus(503))
        let legacy = try #require(RouteCompiler.fault(HTTPFaultInjection(delay: .init(fixedDelay: ConfigDuration.seconds(1), percent: 30))))
        #expect(legacy.delayPerMillion == 300_000)
        #expect(RouteCompiler.fault(HTTPFaultInjection(abort: .init(httpStatus: 500))) == nil, "no percentage injects nothing")
    }

    @Test func aGRPCStatusIsTakenByItsNameAsIstioTakesIt() throws {
        let fault = try #require(RouteCompiler.fault(HTTPFaultInjection(abort: .init(grpcStatus: "UNAVAILABLE",
                                                                                        percentage: .init(value: 100)))))
        #expect(fault.abortWith == .grpcStatus(14) && fault.abortPerMillion == 1_000_000)
    }

    @Test func aDrawHitsBelowTheShareOnly() {
        let fault = FaultInjection(delayNanoseconds: 5, delayPerMillion: 250_000, abortWith: .httpStatus(418), abortPerMillion: 1)
        #expect(fault.delay(draw: 249_999) == 5 && fault.delay(draw: 250_000) == nil)
        #expect(fault.delay(draw: 1_000_000 + 10) == 5, "draws are taken modulo a million")
        #expect(fault.abort(draw: 0) == .httpStatus(418) && fault.abort(draw: 1) == nil)
    }
}
