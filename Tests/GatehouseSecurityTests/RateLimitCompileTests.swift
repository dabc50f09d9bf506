import GatehouseConfig
import GatehouseSecurity
import GatehouseSnapshot
import Testing

/// RateLimitPolicy compiled into the snapshot: scoped as AuthorizationPolicies are, rules in (namespace,
/// name) then written order, each rule's `match` checked and compiled by the AuthorizationPolicy parser.
@Suite struct RateLimitCompileTests {
    func rateLimitPolicy(_ rules: String, name: String = "limits", namespace: String = "istio-system",
                         extra: String = "") -> String {
        """
        apiVersion: gatehouse.dev/v1alpha1
        kind: RateLimitPolicy
        metadata: {name: \(name), namespace: \(namespace)}
        spec:
        \(extra)  rules:
        \(rules.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        """
    }

    @Test func applicablePoliciesCompileInOrderAndOthersAreLeftOut() throws {
        let snapshot = try compileSnapshot([
            rateLimitPolicy("- {name: second, key: [source.ip], limit: {requests: 5, unit: Second}}", name: "b"),
            rateLimitPolicy("- {name: first, quota: {requests: 10, period: Day}}\n- {name: then, limit: {requests: 1, unit: Hour, burst: 3}}",
                            name: "a"),
            rateLimitPolicy("- {name: elsewhere, limit: {requests: 1, unit: Second}}", namespace: "apps"),
            rateLimitPolicy("- {name: other-gateway, limit: {requests: 1, unit: Second}}", name: "c",
                            extra: "  selector: {matchLabels: {istio: egressgateway}}\n"),
        ].joined(separator: "---\n"))
        let limits = snapshot.rateLimits
        #expect(limits.rules.map(\.id) == ["istio-system/a/first", "istio-system/a/then", "istio-system/b/second"])
        #expect(limits.policies == ["istio-system/a", "istio-system/b"])
        #expect(limits.rules[1].summary == "limit 1/hour, burst 3")
        #expect(limits.rules[0].summary == "quota 10/day (UTC)")
        #expect(limits.rules[2].key == [.sourceIP])
        #expect(!limits.anyMatch)
    }

    @Test func aMatchIsTestedWithThePolicyEngine() throws {
        let snapshot = try compileSnapshot(rateLimitPolicy("""
            - name: api
              match: {to: [{operation: {paths: ["/api/*"], methods: [POST]}}]}
              limit: {requests: 5, unit: Second}
            """))
        let limits = snapshot.rateLimits
        #expect(limits.anyMatch)
        #expect(limits.rules[0].hasMatch)
        let post = request { $0.method = "POST"; $0.path = "/api/items" }
        let get = request { $0.path = "/api/items" }
        let postMismatch = limits.matcher.mismatch(rule: 0, post, host: "example.com")
        #expect(postMismatch == nil)
        let mismatch = try #require(limits.matcher.mismatch(rule: 0, get, host: "example.com"))
        let text = mismatch.description(in: limits.matcher.rules[0])
        #expect(text == "match.to[0].operation.methods did not match")
    }

    @Test func aBadMatchIsAnErrorAtItsField() {
        let found = errors(in: loadWithBase(rateLimitPolicy("""
            - name: api
              match: {when: [{key: source.ip, values: [10.0.0.300]}]}
              limit: {requests: 5, unit: Second}
            """)))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path == "spec.rules[0].match.when[0].values[0]")
        #expect(found.first?.resource == "RateLimitPolicy istio-system/limits")
    }

    @Test func anUnchangedRuleKeepsItsCounterIdentityAcrossCompiles() throws {
        let text = rateLimitPolicy("- {name: a, key: [source.ip], limit: {requests: 5, unit: Minute, burst: 2}}")
        let first = try compileSnapshot(text).rateLimits.identities
        let again = try compileSnapshot(text).rateLimits.identities
        let changed = try compileSnapshot(text.replacingOccurrences(of: "burst: 2", with: "burst: 3")).rateLimits.identities
        #expect(first == again)
        #expect(first != changed)
    }
}
