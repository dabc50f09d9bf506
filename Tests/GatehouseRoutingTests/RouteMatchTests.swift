import GatehouseRegex
import GatehouseRouting
import Testing

@Suite struct RouteMatchTests {
    @Test func uriExactPrefixAndRegex() throws {
        #expect(RouteMatch(uri: .exact("/a")).matches(input("/a?x=1")))
        #expect(!RouteMatch(uri: .exact("/a")).matches(input("/a/")))
        // Istio's prefix is a raw string prefix: /foo matches /foobar.
        #expect(RouteMatch(uri: .prefix("/foo")).matches(input("/foobar")))
        #expect(!RouteMatch(uri: .prefix("/foo")).matches(input("/fo")))
        let regex = RouteMatch(uri: .regex(try CompiledRegex("/v[0-9]+/.*")))
        #expect(regex.matches(input("/v2/items")))
        #expect(!regex.matches(input("/x/v2/items")), "regex is a full match")
        #expect(regex.matches(input("/v2/items?q=/x")), "the query is not part of the path")
    }

    @Test func fragmentAndQueryAreNotPartOfThePath() {
        #expect(RouteMatch(uri: .exact("/secure")).matches(input("/secure?x")))
        #expect(RouteMatch(uri: .exact("/secure")).matches(input("/secure#x")))
    }

    @Test func ignoreUriCaseAppliesToExactAndPrefix() {
        #expect(RouteMatch(uri: .exact("/Admin"), ignoreUriCase: true).matches(input("/aDMIN")))
        #expect(RouteMatch(uri: .prefix("/API/"), ignoreUriCase: true).matches(input("/api/x")))
        #expect(!RouteMatch(uri: .prefix("/API/")).matches(input("/api/x")))
    }

    @Test func methodSchemeAuthorityAndPort() throws {
        #expect(RouteMatch(method: .exact("POST")).matches(input("/", method: "POST")))
        #expect(!RouteMatch(method: .exact("POST")).matches(input("/", method: "GET")))
        #expect(RouteMatch(scheme: .exact("http")).matches(input("/")))
        #expect(!RouteMatch(scheme: .exact("https")).matches(input("/")))
        // authority keeps the port, as Envoy's :authority does
        #expect(RouteMatch(authority: .exact("a.com:8080")).matches(input("/", authority: "a.com:8080")))
        #expect(!RouteMatch(authority: .exact("a.com")).matches(input("/", authority: "a.com:8080")))
        #expect(RouteMatch(authority: .regex(try CompiledRegex(#".*\.a\.com"#))).matches(input("/", authority: "x.a.com")))
        #expect(RouteMatch(port: 8080).matches(input("/", port: 8080)))
        #expect(!RouteMatch(port: 9090).matches(input("/", port: 8080)))
    }

    @Test func headersExactPrefixRegexAndPresence() throws {
        let request = input("/", headers: [("x-user", "alice"), ("x-tier", "gold-plus")])
        #expect(RouteMatch(headers: [("x-user", .exact("alice"))]).matches(request))
        #expect(!RouteMatch(headers: [("x-user", .exact("Alice"))]).matches(request), "case-sensitive")
        #expect(RouteMatch(headers: [("x-tier", .prefix("gold"))]).matches(request))
        #expect(RouteMatch(headers: [("x-tier", .regex(try CompiledRegex("gold-.*")))]).matches(request))
        #expect(RouteMatch(headers: [("x-user", .present)]).matches(request))
        #expect(!RouteMatch(headers: [("x-missing", .present)]).matches(request))
        #expect(!RouteMatch(headers: [("x-missing", .prefix(""))]).matches(request), "absent never matches")
    }

    @Test func everyValueOfARepeatedHeaderIsChecked() {
        let request = input("/", headers: [("x-role", "user"), ("x-role", "admin")])
        #expect(RouteMatch(headers: [("x-role", .exact("admin"))]).matches(request))
        #expect(!RouteMatch(headers: [("x-role", .exact("user,admin"))]).matches(request))
    }

    @Test func withoutHeadersInvertsTheMatch() {
        let request = input("/", headers: [("x-debug", "1")])
        #expect(!RouteMatch(withoutHeaders: [("x-debug", .exact("1"))]).matches(request))
        #expect(RouteMatch(withoutHeaders: [("x-debug", .exact("2"))]).matches(request))
        #expect(RouteMatch(withoutHeaders: [("x-other", .present)]).matches(request), "absent header passes")
        #expect(!RouteMatch(withoutHeaders: [("x-debug", .present)]).matches(request))
    }

    @Test func queryParams() throws {
        #expect(RouteMatch(queryParams: [("v", .exact("2"))]).matches(input("/?a=1&v=2")))
        #expect(!RouteMatch(queryParams: [("v", .exact("2"))]).matches(input("/?v=3")))
        #expect(RouteMatch(queryParams: [("debug", .exact(""))]).matches(input("/?debug")), "exact \"\" = present")
        #expect(RouteMatch(queryParams: [("id", .regex(try CompiledRegex("[0-9]+")))]).matches(input("/?id=42")))
        #expect(!RouteMatch(queryParams: [("id", .prefix("4"))]).matches(input("/")))
    }

    @Test func fieldsInOneEntryAreANDed() {
        let match = RouteMatch(uri: .prefix("/api"), method: .exact("GET"), headers: [("x-a", .exact("1"))])
        #expect(match.matches(input("/api/x", headers: [("x-a", "1")])))
        #expect(!match.matches(input("/api/x", method: "POST", headers: [("x-a", "1")])))
        #expect(!match.matches(input("/api/x")))
    }

    @Test func catchAllDetection() throws {
        #expect(RouteMatch(uri: .prefix("/")).isCatchAll)
        #expect(RouteMatch(uri: .regex(try CompiledRegex(".*"))).isCatchAll)
        #expect(RouteMatch().isCatchAll)
        #expect(!RouteMatch(uri: .prefix("/"), headers: [("x", .present)]).isCatchAll)
        #expect(!RouteMatch(uri: .prefix("/a")).isCatchAll)
    }
}
