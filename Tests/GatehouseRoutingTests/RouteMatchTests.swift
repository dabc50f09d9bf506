import GatehouseRegex
import GatehouseRouting
import Testing

@Suite struct RouteMatchTests {
    @Test func uriExactPrefixAndRegex() throws {
        #expect(try RouteMatch(uri: .exact("/a")).matches(input("/a?x=1")))
        #expect(try !RouteMatch(uri: .exact("/a")).matches(input("/a/")))
        // Istio's prefix is a raw string prefix: /foo matches /foobar.
        #expect(try RouteMatch(uri: .prefix("/foo")).matches(input("/foobar")))
        #expect(try !RouteMatch(uri: .prefix("/foo")).matches(input("/fo")))
        let regex = RouteMatch(uri: .regex(try CompiledRegex("/v[0-9]+/.*")))
        #expect(try regex.matches(input("/v2/items")))
        #expect(try !regex.matches(input("/x/v2/items")), "regex is a full match")
        #expect(try regex.matches(input("/v2/items?q=/x")), "the query is not part of the path")
    }

    @Test func fragmentAndQueryAreNotPartOfThePath() throws {
        #expect(try RouteMatch(uri: .exact("/secure")).matches(input("/secure?x")))
        #expect(try RouteMatch(uri: .exact("/secure")).matches(input("/secure#x")))
    }

    @Test func ignoreUriCaseAppliesToExactAndPrefix() throws {
        #expect(try RouteMatch(uri: .exact("/Admin"), ignoreUriCase: true).matches(input("/aDMIN")))
        #expect(try RouteMatch(uri: .prefix("/API/"), ignoreUriCase: true).matches(input("/api/x")))
        #expect(try !RouteMatch(uri: .prefix("/API/")).matches(input("/api/x")))
    }

    @Test func methodSchemeAuthorityAndPort() throws {
        #expect(try RouteMatch(method: .exact("POST")).matches(input("/", method: "POST")))
        #expect(try !RouteMatch(method: .exact("POST")).matches(input("/", method: "GET")))
        #expect(try RouteMatch(scheme: .exact("http")).matches(input("/")))
        #expect(try !RouteMatch(scheme: .exact("https")).matches(input("/")))
        // authority keeps the port, as Envoy's :authority does
        #expect(try RouteMatch(authority: .exact("a.com:8080")).matches(input("/", authority: "a.com:8080")))
        #expect(try !RouteMatch(authority: .exact("a.com")).matches(input("/", authority: "a.com:8080")))
        #expect(try RouteMatch(authority: .regex(try CompiledRegex(#".*\.a\.com"#))).matches(input("/", authority: "x.a.com")))
        #expect(try RouteMatch(port: 8080).matches(input("/", port: 8080)))
        #expect(try !RouteMatch(port: 9090).matches(input("/", port: 8080)))
    }

    @Test func headersExactPrefixRegexAndPresence() throws {
        let request = input("/", headers: [("x-user", "alice"), ("x-tier", "gold-plus")])
        #expect(try RouteMatch(headers: [("x-user", .exact("alice"))]).matches(request))
        #expect(try !RouteMatch(headers: [("x-user", .exact("Alice"))]).matches(request), "case-sensitive")
        #expect(try RouteMatch(headers: [("x-tier", .prefix("gold"))]).matches(request))
        #expect(try RouteMatch(headers: [("x-tier", .regex(try CompiledRegex("gold-.*")))]).matches(request))
        #expect(try RouteMatch(headers: [("x-user", .present)]).matches(request))
        #expect(try !RouteMatch(headers: [("x-missing", .present)]).matches(request))
        #expect(try !RouteMatch(headers: [("x-missing", .prefix(""))]).matches(request), "absent never matches")
    }

    @Test func everyValueOfARepeatedHeaderIsChecked() throws {
        let request = input("/", headers: [("x-role", "user"), ("x-role", "admin")])
        #expect(try RouteMatch(headers: [("x-role", .exact("admin"))]).matches(request))
        #expect(try !RouteMatch(headers: [("x-role", .exact("user,admin"))]).matches(request))
    }

    @Test func withoutHeadersInvertsTheMatch() throws {
        let request = input("/", headers: [("x-debug", "1")])
        #expect(try !RouteMatch(withoutHeaders: [("x-debug", .exact("1"))]).matches(request))
        #expect(try RouteMatch(withoutHeaders: [("x-debug", .exact("2"))]).matches(request))
        #expect(try RouteMatch(withoutHeaders: [("x-other", .present)]).matches(request), "absent header passes")
        #expect(try !RouteMatch(withoutHeaders: [("x-debug", .present)]).matches(request))
    }

    @Test func queryParams() throws {
        #expect(try RouteMatch(queryParams: [("v", .exact("2"))]).matches(input("/?a=1&v=2")))
        #expect(try !RouteMatch(queryParams: [("v", .exact("2"))]).matches(input("/?v=3")))
        #expect(try RouteMatch(queryParams: [("debug", .exact(""))]).matches(input("/?debug")), "exact \"\" = present")
        #expect(try RouteMatch(queryParams: [("id", .regex(try CompiledRegex("[0-9]+")))]).matches(input("/?id=42")))
        #expect(try !RouteMatch(queryParams: [("id", .prefix("4"))]).matches(input("/")))
    }

    @Test func fieldsInOneEntryAreANDed() throws {
        let match = RouteMatch(uri: .prefix("/api"), method: .exact("GET"), headers: [("x-a", .exact("1"))])
        #expect(try match.matches(input("/api/x", headers: [("x-a", "1")])))
        #expect(try !match.matches(input("/api/x", method: "POST", headers: [("x-a", "1")])))
        #expect(try !match.matches(input("/api/x")))
    }

    @Test func catchAllDetection() throws {
        #expect(RouteMatch(uri: .prefix("/")).isCatchAll)
        #expect(RouteMatch(uri: .regex(try CompiledRegex(".*"))).isCatchAll)
        #expect(RouteMatch().isCatchAll)
        #expect(!RouteMatch(uri: .prefix("/"), headers: [("x", .present)]).isCatchAll)
        #expect(!RouteMatch(uri: .prefix("/a")).isCatchAll)
    }
}
