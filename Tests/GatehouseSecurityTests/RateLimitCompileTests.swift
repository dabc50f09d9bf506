import GatehouseConfig
import GatehouseRateLimit
import GatehouseRouting
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

    @Test func istiosRecipeCompilesToAGatewayBucketAndARouteBucketThatReplacesIt() throws {
        let snapshot = try compileSnapshot("""
            apiVersion: networking.istio.io/v1alpha3
            kind: EnvoyFilter
            metadata: {name: local, namespace: istio-system}
            spec:
              workloadSelector: {labels: {istio: ingressgateway}}
              configPatches:
              - applyTo: HTTP_FILTER
                match: {context: GATEWAY, listener: {portNumber: 8080}}
                patch:
                  operation: INSERT_BEFORE
                  value:
                    name: envoy.filters.http.local_ratelimit
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: gw
                      token_bucket: {max_tokens: 10, tokens_per_fill: 5, fill_interval: 2s}
                      filter_enabled: {default_value: {numerator: 50, denominator: HUNDRED}}
                      filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
                      status: {code: 503}
                      response_headers_to_add: [{header: {key: X-Limited, value: "yes"}}]
              - applyTo: HTTP_ROUTE
                match: {context: GATEWAY, routeConfiguration: {vhost: {name: "api.example.com:8080", route: {name: api}}}}
                patch:
                  operation: MERGE
                  value:
                    typed_per_filter_config:
                      envoy.filters.http.local_ratelimit:
                        "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                        stat_prefix: api
                        token_bucket: {max_tokens: 1, fill_interval: 1s}
                        enable_x_ratelimit_headers: DRAFT_VERSION_03

            """)
        let limits = snapshot.rateLimits
        #expect(limits.rules.map(\.id) == ["istio-system/local/gw", "istio-system/local/api"])
        #expect(limits.policies == ["istio-system/local"])
        let (wide, route) = (limits.rules[0], limits.rules[1])
        #expect(wide.algorithm == .bucket(TokenBucketPolicy(requests: 5, unitNanoseconds: 2_000_000_000, burst: 10)))
        #expect(wide.enabledPerMillion == 500_000 && wide.enforcedPerMillion == 1_000_000)
        #expect(wide.reply.status == 503 && !wide.reply.limitHeaders && wide.reply.envoyRateLimited)
        #expect(wide.reply.headers.map(\.name) == ["x-limited"])
        // Unset filter_enabled: 0%, as in Envoy.
        #expect(route.enabledPerMillion == 0 && route.reply.limitHeaders && route.reply.status == 429)
        let api = Route(name: "api", matches: [], action: .directResponse(status: 200, body: []))
        let other = Route(name: "other", matches: [], action: .directResponse(status: 200, body: []))
        let host = VirtualHost(domain: "api.example.com", routes: [api, other])
        #expect(route.applies(port: 8080, virtualHost: host, route: api))
        #expect(!route.applies(port: 8080, virtualHost: host, route: other))
        #expect(!route.applies(port: 9090, virtualHost: host, route: api))
        #expect(!wide.applies(port: 8080, virtualHost: host, route: api), "the route's own bucket replaces it")
        #expect(wide.applies(port: 8080, virtualHost: host, route: other))
        #expect(wide.applies(port: 8080, virtualHost: nil, route: nil), "a request no route takes")
        #expect(!wide.applies(port: 9090, virtualHost: host, route: other), "listener.portNumber")
    }
}
