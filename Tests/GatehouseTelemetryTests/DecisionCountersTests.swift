@testable import GatehouseTelemetry
import Testing

@Suite struct DecisionCountersTests {
    final class Label: Sendable {}

    @Test func countsSurviveTheLabelsTheyWereMadeUnder() {
        let metrics = GatewayMetrics()
        let loop = metrics.makeDecisionCounters()
        let old = Label()
        loop.recordDecision(owner: old, policy: "ns/p", action: "ALLOW", allowed: true)
        _ = metrics.decisionTotals()  // a scrape folds the entry
        let reloaded = Label()  // the same rule in a new snapshot
        loop.recordDecision(owner: reloaded, policy: "ns/p", action: "ALLOW", allowed: true)
        loop.recordDecision(owner: reloaded, policy: "ns/p", action: "ALLOW", allowed: false)
        let totals = metrics.decisionTotals().authz
        #expect(totals[.init(policy: "ns/p", action: "ALLOW", decision: "allow")] == 2)
        #expect(totals[.init(policy: "ns/p", action: "ALLOW", decision: "deny")] == 1)
    }

    @Test func manyLabelsWithoutScrapesAreFoldedNotKept() {
        let loop = DecisionCounters()
        for _ in 0..<(DecisionCounters.foldThreshold + 10) {
            loop.recordDecision(owner: Label(), policy: "ns/p", action: "DENY", allowed: false)
        }
        let (totals, _) = loop.snapshot()
        #expect(totals[.init(policy: "ns/p", action: "DENY", decision: "deny")] == DecisionCounters.foldThreshold + 10)
    }

    @Test func jwtOutcomes() {
        let loop = DecisionCounters()
        loop.recordAuthenticated()
        loop.recordAuthenticationFailure("jwt_authn_access_denied{Jwt_is_expired}")
        let (_, outcomes) = loop.snapshot()
        #expect(outcomes == ["authenticated": 1, "jwt_authn_access_denied{Jwt_is_expired}": 1])
    }
}
