import GatehouseSecurity
import Testing

/// Istio's evaluation order and empty-policy semantics (reference §5).
@Suite struct AuthorizationPrecedenceTests {
    @Test func noPolicyAllows() throws {
        let decision = try engine("").evaluate(request())
        #expect(decision.allowed && decision.logName == nil)
    }

    @Test func allowWithoutRulesAllowsNothing() throws {
        let decision = try engine(policy("{}")).evaluate(request())
        #expect(!decision.allowed)
        #expect(decision.logName == "allow-nothing")
        #expect(decision.responseCodeDetails == "rbac_access_denied_matched_policy[none]")
    }

    @Test func emptyRuleMatchesEverything() throws {
        #expect(try engine(policy("{rules: [{}]}")).evaluate(request()).allowed)
        let denied = try engine(policy("{action: DENY, rules: [{}]}", name: "deny-all")).evaluate(request())
        #expect(!denied.allowed)
        #expect(denied.logName == "istio-system/deny-all[rule 0]")
        #expect(denied.responseCodeDetails == "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-all]-rule[0]]")
    }

    @Test func denyWinsOverAllow() throws {
        let documents = policy("{rules: [{}]}", name: "allow-all") + "---\n"
            + policy("{action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}", name: "deny-admin")
        let engine = try engine(documents)
        #expect(engine.evaluate(request()).allowed)
        let denied = engine.evaluate(request { $0.path = "/admin" })
        #expect(!denied.allowed && denied.logName == "istio-system/deny-admin[rule 0]")
    }

    @Test func anAllowPolicyThatMatchesNothingDenies() throws {
        let engine = try engine(policy("{rules: [{to: [{operation: {paths: [/public]}}]}]}", name: "public-only"))
        let denied = engine.evaluate(request { $0.path = "/private" })
        #expect(!denied.allowed && denied.logName == "default-deny")
        let allowed = engine.evaluate(request { $0.path = "/public" })
        #expect(allowed.allowed && allowed.logName == "istio-system/public-only[rule 0]")
    }

    @Test func anAllowPolicyForAnotherPortStillDeniesThisOne() throws {
        let documents = policy("{rules: [{to: [{operation: {ports: [\"9090\"]}}]}]}")
        #expect(!(try engine(documents, port: 8080).evaluate(request()).allowed))
        #expect(try engine(documents, port: 9090).evaluate(request { $0.port = 9090 }).allowed)
    }

    @Test func auditNeverChangesTheDecision() throws {
        let engine = try engine(policy("{action: AUDIT, rules: [{}]}", name: "audit"))
        let decision = engine.evaluate(request())
        #expect(decision.allowed && decision.audit?.logName == "istio-system/audit[rule 0]")
    }

    @Test func rulesAreAnyFromAndAnyToAndEveryWhen() throws {
        let engine = try engine(policy("""
        {rules: [{from: [{source: {ipBlocks: [10.0.0.1]}}, {source: {ipBlocks: [10.0.0.2]}}],
                  to: [{operation: {methods: [GET]}}, {operation: {methods: [POST]}}],
                  when: [{key: "request.headers[x-a]", values: ["1"]}, {key: "request.headers[x-b]", values: ["2"]}]}]}
        """))
        let both = Headers([("x-a", "1"), ("x-b", "2")])
        #expect(engine.evaluate(request { $0.headers = both }).allowed)
        #expect(engine.evaluate(request { $0.headers = both; $0.sourceIP = IPAddress("10.0.0.2"); $0.method = "POST" }).allowed)
        #expect(!engine.evaluate(request { $0.headers = both; $0.sourceIP = IPAddress("10.0.0.3") }).allowed)
        #expect(!engine.evaluate(request { $0.headers = both; $0.method = "PUT" }).allowed)
        #expect(!engine.evaluate(request { $0.headers = Headers([("x-a", "1")]) }).allowed, "every when must hold")
    }

    @Test func fieldsInOneEntryAreANDedAndNotIsANDedWithPositive() throws {
        let engine = try engine(policy("{rules: [{to: [{operation: {paths: [\"/api/*\"], notPaths: [/api/internal]}}]}]}"))
        #expect(engine.evaluate(request { $0.path = "/api/users" }).allowed)
        #expect(!engine.evaluate(request { $0.path = "/api/internal" }).allowed)
        #expect(!engine.evaluate(request { $0.path = "/other" }).allowed)
    }
}

/// Which policies apply to this gateway (reference §5, Scope).
@Suite struct AuthorizationScopeTests {
    @Test func otherNamespacesDoNotApply() throws {
        #expect(try engine(policy("{}", namespace: "apps")).isEmpty)
    }

    @Test func rootNamespaceAppliesAndItsSelectorMatchesHere() throws {
        let engine = try engine(policy("{selector: {matchLabels: {istio: ingressgateway}}}"))
        #expect(!engine.isEmpty && !engine.evaluate(request()).allowed)
    }

    @Test func aSelectorForOtherWorkloadsDoesNotApply() throws {
        #expect(try engine(policy("{selector: {matchLabels: {app: reviews}}}")).isEmpty)
    }

    @Test func targetRefToThisGatewayApplies() throws {
        let mine = "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]}"
        let other = "{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: other}]}"
        #expect(!(try engine(policy(mine)).isEmpty))
        #expect(try engine(policy(other)).isEmpty)
    }

    @Test func dryRunPoliciesAreNotEnforced() throws {
        let document = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: shadow, namespace: istio-system, annotations: {istio.io/dry-run: "true"}}
        spec: {}

        """
        #expect(try engine(document).isEmpty)
    }
}

/// Each field in allow and deny form, with its `not` variant (reference §5, Matching).
@Suite struct AuthorizationFieldTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var rule: String
        var matching: @Sendable (inout AuthorizationRequest) -> Void
        var notMatching: @Sendable (inout AuthorizationRequest) -> Void
        var testDescription: String { rule }
    }

    static let cases: [Case] = [
        Case(rule: "{from: [{source: {principals: [cluster.local/ns/apps/sa/client]}}]}",
             matching: { $0.peerPrincipal = spiffeClient },
             notMatching: { $0.peerPrincipal = "spiffe://cluster.local/ns/apps/sa/other" }),
        Case(rule: "{from: [{source: {principals: [\"cluster.local/ns/apps/*\"]}}]}",
             matching: { $0.peerPrincipal = spiffeClient }, notMatching: { $0.peerPrincipal = nil }),
        Case(rule: "{from: [{source: {principals: [\"*/sa/client\"]}}]}",
             matching: { $0.peerPrincipal = spiffeClient }, notMatching: { $0.peerPrincipal = "client" }),
        Case(rule: "{from: [{source: {principals: [\"*\"]}}]}",
             matching: { $0.peerPrincipal = "client.example.com" }, notMatching: { $0.peerPrincipal = nil }),
        Case(rule: "{from: [{source: {notPrincipals: [cluster.local/ns/apps/sa/client]}}]}",
             matching: { $0.peerPrincipal = nil }, notMatching: { $0.peerPrincipal = spiffeClient }),
        Case(rule: "{from: [{source: {namespaces: [apps]}}]}",
             matching: { $0.peerPrincipal = spiffeClient },
             notMatching: { $0.peerPrincipal = "spiffe://cluster.local/ns/apps-x/sa/client" }),
        Case(rule: "{from: [{source: {notNamespaces: [apps]}}]}",
             matching: { $0.peerPrincipal = nil }, notMatching: { $0.peerPrincipal = spiffeClient }),
        Case(rule: "{from: [{source: {serviceAccounts: [client]}}]}",
             matching: { $0.peerPrincipal = "spiffe://cluster.local/ns/istio-system/sa/client" },
             notMatching: { $0.peerPrincipal = spiffeClient }),
        Case(rule: "{from: [{source: {serviceAccounts: [apps/client]}}]}",
             matching: { $0.peerPrincipal = spiffeClient }, notMatching: { $0.peerPrincipal = nil }),
        Case(rule: "{from: [{source: {serviceAccounts: [apps/web.v2]}}]}",  // CVE-2026-39350: the dot is literal
             matching: { $0.peerPrincipal = "spiffe://cluster.local/ns/apps/sa/web.v2" },
             notMatching: { $0.peerPrincipal = "spiffe://cluster.local/ns/apps/sa/webXv2" }),
        Case(rule: "{from: [{source: {notServiceAccounts: [apps/client]}}]}",
             matching: { $0.peerPrincipal = nil }, notMatching: { $0.peerPrincipal = spiffeClient }),
        Case(rule: "{from: [{source: {requestPrincipals: [\"https://idp.example.com/*\"]}}]}",
             matching: { $0.jwt = jwt(["iss": .string("https://idp.example.com"), "sub": .string("u1")]) },
             notMatching: { $0.jwt = jwt(["iss": .string("https://evil.example.com"), "sub": .string("u1")]) }),
        Case(rule: "{from: [{source: {requestPrincipals: [\"*\"]}}]}",
             matching: { $0.jwt = jwt(["iss": .string("i"), "sub": .string("s")]) }, notMatching: { $0.jwt = nil }),
        Case(rule: "{from: [{source: {notRequestPrincipals: [\"*\"]}}]}",
             matching: { $0.jwt = nil }, notMatching: { $0.jwt = jwt(["iss": .string("i"), "sub": .string("s")]) }),
        Case(rule: "{from: [{source: {ipBlocks: [10.0.0.0/24, \"2001:db8::/32\"]}}]}",
             matching: { $0.sourceIP = IPAddress("2001:db8::7") }, notMatching: { $0.sourceIP = IPAddress("10.0.1.1") }),
        Case(rule: "{from: [{source: {ipBlocks: [10.0.0.0/24]}}]}",
             matching: { $0.sourceIP = IPAddress("::ffff:10.0.0.9") }, notMatching: { $0.sourceIP = IPAddress("::1") }),
        Case(rule: "{from: [{source: {notIpBlocks: [10.0.0.1]}}]}",
             matching: { $0.sourceIP = IPAddress("10.0.0.2") }, notMatching: { _ in }),
        Case(rule: "{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}",
             matching: { $0.remoteIP = IPAddress("203.0.113.5") }, notMatching: { _ in }),
        Case(rule: "{from: [{source: {notRemoteIpBlocks: [203.0.113.0/24]}}]}",
             matching: { _ in }, notMatching: { $0.remoteIP = IPAddress("203.0.113.5") }),
        Case(rule: "{to: [{operation: {hosts: [Example.COM]}}]}",
             matching: { $0.host = "EXAMPLE.com" }, notMatching: { $0.host = "example.com:8080" }),
        Case(rule: "{to: [{operation: {hosts: [example.com, \"example.com:*\"]}}]}",
             matching: { $0.host = "example.com:8080" }, notMatching: { $0.host = "example.org" }),
        Case(rule: "{to: [{operation: {hosts: [\"*.example.com\"]}}]}",
             matching: { $0.host = "API.example.com" }, notMatching: { $0.host = "example.com" }),
        Case(rule: "{to: [{operation: {notHosts: [secret.example.com]}}]}",
             matching: { _ in }, notMatching: { $0.host = "Secret.Example.com" }),
        Case(rule: "{to: [{operation: {ports: [\"8080\"]}}]}", matching: { _ in }, notMatching: { $0.port = 9090 }),
        Case(rule: "{to: [{operation: {notPorts: [\"9090\"]}}]}", matching: { _ in }, notMatching: { $0.port = 9090 }),
        Case(rule: "{to: [{operation: {methods: [GET, HEAD]}}]}", matching: { $0.method = "HEAD" },
             notMatching: { $0.method = "POST" }),
        Case(rule: "{to: [{operation: {notMethods: [DELETE]}}]}", matching: { _ in }, notMatching: { $0.method = "DELETE" }),
        Case(rule: "{to: [{operation: {paths: [/exact]}}]}", matching: { $0.path = "/exact" },
             notMatching: { $0.path = "/exact/more" }),
        Case(rule: "{to: [{operation: {paths: [\"/api/*\"]}}]}", matching: { $0.path = "/api/x/y" },
             notMatching: { $0.path = "/API/x" }),
        Case(rule: "{to: [{operation: {paths: [\"*.png\"]}}]}", matching: { $0.path = "/img/a.png" },
             notMatching: { $0.path = "/img/a.png.txt" }),
        Case(rule: "{to: [{operation: {paths: [\"/users/{*}/profile\"]}}]}", matching: { $0.path = "/users/7/profile" },
             notMatching: { $0.path = "/users/7/8/profile" }),
        Case(rule: "{to: [{operation: {paths: [\"/files/{**}\"]}}]}", matching: { $0.path = "/files/a/b/c" },
             notMatching: { $0.path = "/files" }),
        Case(rule: "{to: [{operation: {paths: [\"/files/{**}/edit\"]}}]}", matching: { $0.path = "/files/a/b/edit" },
             notMatching: { $0.path = "/files/edit" }),
        Case(rule: "{to: [{operation: {paths: [\"/{*}/files/{**}/v1/edit\"]}}]}", matching: { $0.path = "/t/files/a/v1/edit" },
             notMatching: { $0.path = "/t/files/a/v2/edit" }),
        Case(rule: "{from: [{source: {trustDomains: [example.org]}}]}", matching: { $0.peerPrincipal = "spiffe://example.org/ns/a/sa/b" },
             notMatching: { $0.peerPrincipal = "spiffe://cluster.local/ns/a/sa/b" }),
        Case(rule: "{from: [{source: {notTrustDomains: [\"*.corp\"]}}]}", matching: { $0.peerPrincipal = nil },
             notMatching: { $0.peerPrincipal = "spiffe://eu.corp/ns/a/sa/b" }),
        Case(rule: "{when: [{key: source.trustDomain, values: [cluster.local]}]}",
             matching: { $0.peerPrincipal = "spiffe://cluster.local/ns/a/sa/b" }, notMatching: { $0.peerPrincipal = "spiffe:///x" }),
        Case(rule: "{to: [{operation: {notPaths: [\"/admin*\"]}}]}", matching: { $0.path = "/public" },
             notMatching: { $0.path = "/admin/x" }),
        Case(rule: "{when: [{key: \"request.headers[X-Role]\", values: [admin]}]}",
             matching: { $0.headers = Headers([("x-role", "user"), ("x-role", "admin")]) },
             notMatching: { $0.headers = Headers([("x-role", "user, admin")]) }),
        Case(rule: "{when: [{key: \"request.headers[x-role]\", notValues: [admin]}]}",
             matching: { $0.headers = Headers([("x-role", "user")]) },
             notMatching: { $0.headers = Headers([("x-role", "user"), ("x-role", "admin")]) }),
        Case(rule: "{when: [{key: \"request.headers[x-token]\", values: [\"*\"]}]}",
             matching: { $0.headers = Headers([("x-token", "t")]) }, notMatching: { _ in }),
        Case(rule: "{when: [{key: source.ip, values: [10.0.0.0/8]}]}",
             matching: { _ in }, notMatching: { $0.sourceIP = IPAddress("192.168.1.1") }),
        Case(rule: "{when: [{key: remote.ip, notValues: [198.51.100.0/24]}]}",
             matching: { _ in }, notMatching: { $0.remoteIP = IPAddress("198.51.100.1") }),
        Case(rule: "{when: [{key: source.namespace, values: [apps]}]}",
             matching: { $0.peerPrincipal = spiffeClient }, notMatching: { _ in }),
        Case(rule: "{when: [{key: source.principal, values: [cluster.local/ns/apps/sa/client]}]}",
             matching: { $0.peerPrincipal = spiffeClient }, notMatching: { _ in }),
        Case(rule: "{when: [{key: request.auth.principal, values: [issuer/alice]}]}",
             matching: { $0.jwt = jwt(["iss": .string("issuer"), "sub": .string("alice")]) },
             notMatching: { $0.jwt = jwt(["iss": .string("issuer"), "sub": .string("bob")]) }),
        Case(rule: "{when: [{key: request.auth.audiences, values: [api]}]}",
             matching: { $0.jwt = jwt(["aud": .array([.string("web"), .string("api")])]) },
             notMatching: { $0.jwt = jwt(["aud": .string("web")]) }),
        Case(rule: "{when: [{key: request.auth.presenter, values: [\"mobile-*\"]}]}",
             matching: { $0.jwt = jwt(["azp": .string("mobile-ios")]) }, notMatching: { $0.jwt = jwt([:]) }),
        Case(rule: "{when: [{key: \"request.auth.claims[groups]\", values: [admins]}]}",
             matching: { $0.jwt = jwt(["groups": .array([.string("dev"), .string("admins")])]) },
             notMatching: { $0.jwt = jwt(["groups": .string("dev")]) }),
        Case(rule: "{when: [{key: \"request.auth.claims[realm][role]\", values: [admin]}]}",
             matching: { $0.jwt = jwt(["realm": .object(["role": .string("admin")])]) },
             notMatching: { $0.jwt = jwt(["role": .string("admin")]) }),
        Case(rule: "{when: [{key: \"request.auth.claims[level]\", values: [\"3\"]}]}",
             matching: { $0.jwt = jwt(["level": .number(3)]) }, notMatching: { $0.jwt = jwt(["level": .number(4)]) }),
        Case(rule: "{when: [{key: destination.ip, values: [10.0.0.100]}]}",
             matching: { _ in }, notMatching: { $0.destinationIP = IPAddress("10.0.0.101") }),
        Case(rule: "{when: [{key: destination.port, values: [\"8080\"]}]}",
             matching: { _ in }, notMatching: { $0.port = 9090 }),
        Case(rule: "{when: [{key: connection.sni, values: [\"*.example.com\"]}]}",
             matching: { $0.serverName = "api.example.com" }, notMatching: { $0.serverName = nil }),
    ]

    /// As an ALLOW rule: the matching request is allowed, the other denied.
    @Test(arguments: cases) func asAllow(_ test: Case) throws {
        let text = policy("{rules: [\(test.rule)]}")
        let allowed = request(test.matching)
        #expect(try engine(text, port: allowed.port).evaluate(allowed).allowed)
        let denied = request(test.notMatching)
        #expect(!(try engine(text, port: denied.port).evaluate(denied).allowed))
    }

    /// As a DENY rule: the matching request is denied, the other allowed.
    @Test(arguments: cases) func asDeny(_ test: Case) throws {
        let text = policy("{action: DENY, rules: [\(test.rule)]}")
        let denied = request(test.matching)
        #expect(!(try engine(text, port: denied.port).evaluate(denied).allowed))
        let allowed = request(test.notMatching)
        #expect(try engine(text, port: allowed.port).evaluate(allowed).allowed)
    }
}

/// Rules indexed by host are still found whatever the case of the request's Host, and rules for other
/// hosts never decide.
@Suite struct AuthorizationHostIndexTests {
    @Test func indexedRulesMatchCaseInsensitively() throws {
        var documents = ""
        for index in 0..<50 {
            documents += policy("{action: DENY, rules: [{to: [{operation: {hosts: [svc\(index).example.com], paths: [/admin]}}]}]}",
                                name: "deny-\(index)") + "---\n"
        }
        documents += policy("{rules: [{to: [{operation: {hosts: [\"*.example.com\"]}}]}]}", name: "allow-example")
        let engine = try engine(documents)
        #expect(!engine.evaluate(request { $0.host = "SVC7.example.com"; $0.path = "/admin" }).allowed)
        #expect(engine.evaluate(request { $0.host = "svc7.example.com"; $0.path = "/public" }).allowed)
        #expect(engine.evaluate(request { $0.host = "svc99.example.com"; $0.path = "/admin" }).allowed)
        #expect(!engine.evaluate(request { $0.host = "example.org" }).allowed)
        var seen: [String] = []
        _ = engine.evaluate(request { $0.host = "svc7.example.com" }) { rule, _ in seen.append(rule.label.policy) }
        #expect(seen == ["istio-system/deny-7", "istio-system/allow-example"], "only rules that can apply to the host are tested")
    }

    @Test func hostWithAnyPortIsIndexedByName() throws {
        let engine = try engine(policy("{action: DENY, rules: [{to: [{operation: {hosts: [api.example.com, \"api.example.com:*\"]}}]}]}"))
        #expect(!engine.evaluate(request { $0.host = "API.example.com:8443" }).allowed)
        #expect(!engine.evaluate(request { $0.host = "api.example.com" }).allowed)
        #expect(engine.evaluate(request { $0.host = "api.example.com.evil:80" }).allowed)
        #expect(engine.evaluate(request { $0.host = "[::1]:80" }).allowed)
    }
}

/// Rules indexed by the path directory they require: every path form still decides as written, and a
/// request tests only the rules whose directory its path begins with.
@Suite struct AuthorizationPathIndexTests {
    @Test func everyPathFormDecidesAsWritten() throws {
        let documents = [
            policy("{action: DENY, rules: [{to: [{operation: {paths: [/api/v1/users]}}]}]}", name: "d1-exact"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"/api/v2/*\"]}}]}]}", name: "d2-prefix"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"/files/{*}/raw\"]}}]}]}", name: "d3-template"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"/docs/{**}\"]}}]}]}", name: "d4-rest"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"*.secret\"]}}]}]}", name: "d5-suffix"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"/x/*\"]}}, {operation: {methods: [DELETE]}}]}]}",
                   name: "d6-either"),
            policy("{action: DENY, rules: [{to: [{operation: {notPaths: [\"/ok/*\"], methods: [PATCH]}}]}]}", name: "d7-not"),
            policy("{action: DENY, rules: [{to: [{operation: {paths: [\"/tmp*\"]}}]}]}", name: "d8-bare-prefix"),
        ].joined(separator: "---\n")
        let engine = try engine(documents)
        let cases: [(method: String, path: String, denied: Bool)] = [
            ("GET", "/api/v1/users", true), ("GET", "/api/v1/users/7", false), ("GET", "/api/v1", false),
            ("GET", "/api/v2/a/b", true), ("GET", "/api/v2", false), ("GET", "/api/v3/a", false),
            ("GET", "/files/a/raw", true), ("GET", "/files/raw", false),
            ("GET", "/docs/a/b", true), ("GET", "/docs/", false),
            ("GET", "/a/b.secret", true), ("GET", "/x/1", true), ("DELETE", "/anything", true),
            ("PATCH", "/nope", true), ("PATCH", "/ok/1", false),
            ("GET", "/tmpfile", true), ("GET", "/tm", false), ("GET", "*", false), ("GET", "", false),
        ]
        for test in cases {
            let decision = engine.evaluate(request { $0.method = test.method; $0.path = test.path })
            #expect(decision.allowed == !test.denied, "\(test.method) \(test.path): \(decision.logName ?? "allowed")")
        }
    }

    @Test func onlyRulesForThePathsDirectoriesAreTested() throws {
        var documents = ""
        for index in 0..<100 {
            documents += policy("{rules: [{to: [{operation: {hosts: [api.example.com], paths: [\"/api/\(index)/*\"]}}]}]}",
                                name: "allow-\(index)") + "---\n"
        }
        documents += policy("{rules: [{to: [{operation: {paths: [\"/api/7/*\", \"/api/7/items/*\"]}}, {operation: {paths: [/api/7/]}}]}]}",
                            name: "allow-any-host")
        documents += "---\n" + policy("{rules: [{to: [{operation: {paths: [\"*.png\"]}}]}]}", name: "allow-png")
        let engine = try engine(documents)
        var seen: [String] = []
        let decision = engine.evaluate(request { $0.host = "api.example.com"; $0.path = "/api/7/items/3" }) { rule, _ in
            seen.append(rule.label.policy)
        }
        #expect(decision.allowed)
        // In policy order (by name), each once though filed under three directories.
        #expect(seen == ["istio-system/allow-7", "istio-system/allow-any-host", "istio-system/allow-png"])
        #expect(decision.logName == "istio-system/allow-7[rule 0]")
        #expect(!engine.evaluate(request { $0.host = "api.example.com"; $0.path = "/api/100/x" }).allowed)
        #expect(engine.evaluate(request { $0.host = "other.example.com"; $0.path = "/api/7/" }).logName
                == "istio-system/allow-any-host[rule 0]")
        #expect(engine.evaluate(request { $0.host = "api.example.com"; $0.path = "/api/99/a.png" }).logName
                == "istio-system/allow-99[rule 0]")
    }
}

@Suite struct ValueMatchTests {
    @Test func istioGlobForms() {
        #expect(ValueMatch(istio: "*") == .present)
        #expect(ValueMatch(istio: "/api/*") == .prefix("/api/"))
        #expect(ValueMatch(istio: "*.png") == .suffix(".png"))
        #expect(ValueMatch(istio: "/a*b") == .exact("/a*b"), "a * in the middle is literal (istio/istio#46910)")
        #expect(ValueMatch(istio: "*a*") == .suffix("a*"), "a leading * wins, as in Istio")
        #expect(!ValueMatch.present.matches(""), "* means present and non-empty")
    }

    @Test func cidrs() throws {
        let block = try #require(IPBlock("10.1.2.3/8"))
        #expect(block.description == "10.0.0.0/8", "host bits are ignored")
        #expect(block.contains(try #require(IPAddress("10.255.0.1"))))
        #expect(!block.contains(try #require(IPAddress("11.0.0.1"))))
        #expect(IPBlock("10.0.0.0/33") == nil && IPBlock("10.0.0/8") == nil && IPBlock("example.com") == nil)
        let v6 = try #require(IPBlock("2001:db8::/127"))
        let one = try #require(IPAddress("2001:db8::1"))
        let two = try #require(IPAddress("2001:db8::2"))
        #expect(v6.contains(one))
        #expect(!v6.contains(two))
        let everything = try #require(IPBlock("0.0.0.0/0"))
        let mapped = try #require(IPAddress("::ffff:192.0.2.1"))
        #expect(everything.contains(mapped), "an IPv4-mapped address is IPv4")
    }
}

/// Istio's TCP semantics: HTTP-only fields drop an ALLOW rule and are ignored by a DENY rule.
@Suite struct AuthorizationTCPTests {
    func rule(_ action: PolicyAction, to: [[Condition]]? = nil, when: [Condition] = []) -> PolicyRule {
        PolicyRule(label: RuleLabel(namespace: "ns", name: action.rawValue, action: action, ruleIndex: 0),
                   from: nil, to: to, when: when)
    }

    let post = Condition(.methods([.exact("POST")]), negated: false, field: "to[0].operation.methods")
    let local = Condition(.sourceIP([IPBlock("127.0.0.0/8")!]), negated: false, field: "when[0] source.ip values")

    var tcpRequest: AuthorizationRequest {
        request { $0.isHTTP = false; $0.method = ""; $0.path = ""; $0.host = "" }
    }

    @Test func allowRulesWithHTTPFieldsAreDropped() {
        #expect(rule(.allow, to: [[post]]).forTCP() == nil)
        #expect(rule(.allow, when: [local]).forTCP() != nil, "connection attributes keep the rule")
    }

    @Test func denyRulesIgnoreHTTPFieldsAndSoDenyMore() throws {
        let tcp = try #require(rule(.deny, to: [[post]]).forTCP())
        let engine = AuthorizationEngine(rules: [tcp], policies: ["ns/DENY"], hasAllowPolicy: false, allowNothing: nil)
        #expect(!engine.evaluate(tcpRequest).allowed, "methods: [POST] denies every TCP connection")
    }

    @Test func anAllowPolicyWhoseRulesAllDropDeniesTCP() {
        let kept = [rule(.allow, to: [[post]])].compactMap { $0.forTCP() }
        let engine = AuthorizationEngine(rules: kept, policies: ["ns/ALLOW"], hasAllowPolicy: true, allowNothing: nil)
        #expect(!engine.evaluate(tcpRequest).allowed)
    }
}
