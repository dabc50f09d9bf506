@testable import GatehouseSecurity
import Testing

/// The compiled form of rules: what it changes (test order, so which failing test `explain` names) and
/// the forms it hands back to `Condition` (templates mixed with globs).
@Suite struct RuleProgramTests {
    /// The mismatches the engine reports for a request, one per candidate rule.
    func mismatches(_ documents: String, _ request: AuthorizationRequest) throws -> [RuleMismatch?] {
        try observed(documents, request).map(\.1)
    }

    func observed(_ documents: String, _ request: AuthorizationRequest) throws -> [(PolicyRule, RuleMismatch?)] {
        var seen: [(PolicyRule, RuleMismatch?)] = []
        _ = try engine(documents).evaluate(request) { seen.append(($0, $1)) }
        return seen
    }

    @Test func theCheapestFailingTestIsNamedAtItsWrittenPosition() throws {
        // Written header first, source.ip second; both fail. The address runs first and is named, as
        // condition 1.
        let text = policy("{rules: [{when: [{key: \"request.headers[x-role]\", values: [admin]}, {key: source.ip, values: [192.0.2.1]}]}]}")
        let seen = try observed(text, request())
        #expect(seen.map(\.1) == [RuleMismatch(section: .when, entry: 0, condition: 1)])
        #expect(seen.first.flatMap { rule, mismatch in mismatch?.description(in: rule) }
            == "when[1] source.ip values did not match")
    }

    @Test func theLastFromEntryTriedIsNamed() throws {
        let text = policy("{rules: [{from: [{source: {ipBlocks: [192.0.2.0/24]}}, {source: {namespaces: [apps], ipBlocks: [10.0.0.0/8]}}]}]}")
        // The second entry's ipBlocks hold, its namespaces (written first) do not.
        #expect(try mismatches(text, request()) == [RuleMismatch(section: .from, entry: 1, condition: 0)])
        #expect(try mismatches(text, request { $0.peerPrincipal = spiffeClient }) == [nil])
    }

    @Test func templatesMixedWithGlobsMatchEither() throws {
        let text = policy("{rules: [{to: [{operation: {paths: [/exact, \"/users/{*}/profile\", \"*.png\"]}}]}]}")
        for path in ["/exact", "/users/7/profile", "/a/b.png"] {
            #expect(try engine(text).evaluate(request { $0.path = path }).allowed, "\(path)")
        }
        for path in ["/exact/", "/users/7/8/profile", "/a.png.txt"] {
            #expect(!(try engine(text).evaluate(request { $0.path = path }).allowed), "\(path)")
        }
    }

    @Test func emptyAndPresentValuesKeepIstiosMeaning() throws {
        // `*` needs a non-empty value; a prefix glob of nothing (`*` alone is presence) is not written.
        let text = policy("{rules: [{when: [{key: \"request.headers[x-a]\", values: [\"*\"]}]}]}")
        #expect(try engine(text).evaluate(request { $0.headers = Headers([("x-a", "1")]) }).allowed)
        #expect(!(try engine(text).evaluate(request { $0.headers = Headers([("x-a", "")]) }).allowed))
        let suffix = policy("{rules: [{to: [{operation: {hosts: [\"*example.com\"]}}]}]}")
        #expect(try engine(suffix).evaluate(request { $0.host = "example.com" }).allowed)
        #expect(!(try engine(suffix).evaluate(request { $0.host = "xample.com" }).allowed))
    }
}
