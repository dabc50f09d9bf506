import GatehouseConfig
import GatehouseRegex
import GatehouseSnapshot
import Testing

/// A regex is compiled once per load: validation compiles it to report errors, and the snapshot uses
/// that same compiled regex.
@Suite struct RegexOnceTests {
    @Test func validationAndCompilationShareEachCompiledRegex() throws {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: SnapshotBindingTests.base + "---\n" + """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs, namespace: istio-system}
        spec:
          hosts: [a.example.com]
          gateways: [edge]
          http:
          - match: [{uri: {regex: "/v[0-9]+/.*"}}, {headers: {x-a: {regex: "/v[0-9]+/.*"}}}]
            rewrite: {uriRegexRewrite: {match: "^/v[0-9]+", rewrite: "/api"}}
            route: [{destination: {host: backend.internal}}]
        """, file: "t.yaml", into: &set, diagnostics: &diagnostics)
        diagnostics += ConfigValidator.validate(set)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        // Two patterns (one used twice in full-match mode), plus the rewrite's in search mode.
        #expect(set.regexes.count == 2)
        let before = try set.regexes.compile("/v[0-9]+/.*")
        _ = try SnapshotCompiler.compile(set, version: 1)
        #expect(set.regexes.count == 2, "compiling the snapshot compiled nothing again")
        #expect(try set.regexes.compile("/v[0-9]+/.*") === before)
    }

    @Test func aBadPatternIsReportedOnceAndRemembered() {
        let cache = RegexCache()
        #expect(throws: RegexError.self) { try cache.compile("a(") }
        #expect(throws: RegexError.self) { try cache.compile("a(") }
        #expect(cache.count == 1)
    }
}
