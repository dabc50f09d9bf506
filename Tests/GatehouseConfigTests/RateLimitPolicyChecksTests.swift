import Testing
@testable import GatehouseConfig

/// RateLimitPolicy is decoded and checked field by field, so every mistake is reported where it is.
/// (A rule's `match` is checked with the AuthorizationPolicy parser, in GatehouseSnapshot.)
@Suite struct RateLimitPolicyChecksTests {
    /// A RateLimitPolicy whose rules are `rules` (YAML list items, from line 6).
    func policy(_ rules: String) -> String {
        """
        apiVersion: gatehouse.dev/v1alpha1
        kind: RateLimitPolicy
        metadata: {name: api-limits, namespace: istio-system}
        spec:
          rules:
        \(rules.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        """
    }

    @Test func aWellFormedPolicyLoads() {
        let diagnostics = errors(in: loadWithBase(policy("""
            - name: per-client-ip
              match: {to: [{operation: {paths: ["/api/*"]}}]}
              key: [source.ip, "request.headers[x-api-key]", "request.auth.claims[sub]", host, route]
              limit: {requests: 100, unit: Minute, burst: 20}
            - name: monthly
              key: ["request.headers[x-api-key]"]
              quota: {requests: 100000, period: Month, timeZone: Europe/Paris}
              shadow: true
            """)))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
    }

    @Test(arguments: [
        ("- {name: a, limit: {requests: 0, unit: Second}}", "spec.rules[0].limit.requests", "at least 1"),
        ("- {name: a, limit: {requests: -5, unit: Second}}", "spec.rules[0].limit.requests", "at least 1"),
        ("- {name: a, limit: {requests: 5, unit: Fortnight}}", "spec.rules[0].limit.unit", "unknown value \"Fortnight\""),
        ("- {name: a, limit: {requests: 5, unit: Second, burst: 0}}", "spec.rules[0].limit.burst", "at least 1"),
        ("- {name: a, limit: {requests: 5}}", "spec.rules[0].limit.unit", "missing required field"),
        ("- {name: a, limit: {unit: Second}}", "spec.rules[0].limit.requests", "missing required field"),
        ("- {name: a, limit: {requests: 2000000000, unit: Second}}", "spec.rules[0].limit.requests", "per nanosecond"),
        ("- {name: a, limit: {requests: 1, unit: Hour, burst: 1000000000000}}", "spec.rules[0].limit.burst", "more than a century"),
        ("- {name: a, quota: {requests: 10}}", "spec.rules[0].quota.period", "missing required field"),
        ("- {name: a, quota: {requests: 4294967295, period: Day}}", "spec.rules[0].quota.requests", "between 1 and"),
        ("- {name: a, quota: {requests: 0, period: Day}}", "spec.rules[0].quota.requests", "between 1 and"),
        ("- {name: a, quota: {requests: 10, period: Week}}", "spec.rules[0].quota.period", "unknown value \"Week\""),
        ("- {name: a, quota: {requests: 10, period: Day, timeZone: Mars/Base}}", "spec.rules[0].quota.timeZone", "unknown time zone"),
        ("- {name: a, key: [source.ipp], limit: {requests: 5, unit: Second}}", "spec.rules[0].key[0]", "did you mean \"source.ip\""),
        ("- {name: a, key: [\"request.headers[x api]\"], limit: {requests: 5, unit: Second}}", "spec.rules[0].key[0]", "unknown attribute"),
        ("- {name: a}", "spec.rules[0]", "set a limit or a quota"),
        ("- {name: a, limit: {requests: 5, unit: Second}, quota: {requests: 5, period: Day}}", "spec.rules[0]", "alternatives"),
        ("- {limit: {requests: 5, unit: Second}}", "spec.rules[0].name", "missing required field"),
        ("- {name: \"a b\", limit: {requests: 5, unit: Second}}", "spec.rules[0].name", "at most 63"),
        ("- {name: a, limit: {requests: 5, unit: Second}}\n- {name: a, quota: {requests: 5, period: Day}}", "spec.rules[1].name", "duplicate rule name"),
    ])
    func badRulesAreRefusedAtTheirField(_ rules: String, _ path: String, _ words: String) {
        let diagnostics = errors(in: loadWithBase(policy(rules)))
        #expect(diagnostics.map(\.path) == [path], "\(diagnostics)")
        #expect(diagnostics.first?.message.contains(words) == true, "\(diagnostics)")
        #expect((diagnostics.first?.location.line ?? 0) >= 6, "the rule's own line")
    }

    @Test func aPolicyWithoutRulesIsRefusedAtRules() {
        let text = """
            apiVersion: gatehouse.dev/v1alpha1
            kind: RateLimitPolicy
            metadata: {name: empty, namespace: istio-system}
            spec:
              rules: []

            """
        let diagnostics = errors(in: loadWithBase(text))
        #expect(diagnostics.map(\.path) == ["spec.rules"], "\(diagnostics)")
    }

    @Test func keyAttributesParse() {
        #expect(RateLimitKeyAttribute("request.headers[X-Api-Key]") == .header("x-api-key"))
        #expect(RateLimitKeyAttribute("request.auth.claims[groups]") == .claim("groups"))
        #expect(RateLimitKeyAttribute("request.headers[]") == nil)
        #expect(RateLimitKeyAttribute("connection.sni") == .connectionSNI)
    }
}
