import GatehouseRegex
import Testing

@Suite struct CompiledRegexTests {
    @Test func matchesTheWholeSubjectLikeRE2() throws {
        let digits = try CompiledRegex(#"\d+$"#)
        #expect(try digits.matches("123"))
        #expect(try !digits.matches("a123"))
        let prefix = try CompiledRegex("/api/.*")
        #expect(try prefix.matches("/api/v1"))
        #expect(try !prefix.matches("/x/api/v1"))
        let alternation = try CompiledRegex("a|ab")
        #expect(try alternation.matches("ab"), "full match must try the longer branch")
    }

    @Test func rejectsConstructsRE2DoesNotSupport() {
        for pattern in [#"(a)\1"#, "(?=x)a", "(?!x)a", "(?<=x)a", "(?<!x)a", "(?>a)", "a++", "(?R)"] {
            #expect(throws: RegexError.self, "\(pattern) must be rejected") { try CompiledRegex(pattern) }
        }
    }

    @Test func reportsSyntaxErrorsWithOffset() {
        do {
            _ = try CompiledRegex("/api/(v1")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("missing"))
            #expect(error.offset == 8)
        }
    }

    @Test func catastrophicBacktrackingIsCutOffByTheMatchLimitAndSaysSo() throws {
        let regex = try CompiledRegex("(a+)+b", matchLimit: 10_000)
        // The "b" is there (so PCRE2 cannot rule the match out before trying), after a character that fails it.
        let subject = String(repeating: "a", count: 40) + "!b"
        // Not "no match": a caller treating the limit as a miss would let the subject pick the route.
        #expect(throws: RegexLimitExceeded.self) { try regex.matches(subject) }
        #expect(throws: RegexLimitExceeded.self) { try regex.replacingMatches(in: subject, with: "x") }
        #expect(try regex.matches("aab"), "an ordinary subject still matches")
        #expect(try !regex.matches("b"))
    }

    @Test func nestedQuantifiersAreFlaggedAsABacktrackingHazard() {
        for pattern in ["(a+)+b", #"^(\w+\s?)*$"#, "(x*){2,}", "((ab)+c)*", "/api/(v[0-9]+)+"] {
            #expect(CompiledRegex.backtrackingHazard(in: pattern) != nil, "\(pattern)")
        }
        for pattern in ["/api/.*", "(a|b)*", "(abc)+", "([0-9]+)?", "[(a+)+]", #"\(a+\)+"#, "(ab){3}", "(a+){1}"] {
            #expect(CompiledRegex.backtrackingHazard(in: pattern) == nil, "\(pattern)")
        }
    }

    @Test func substitutesCaptureGroups() throws {
        let regex = try CompiledRegex("^/service/([^/]+)(/.*)$")
        #expect(try regex.replacingMatches(in: "/service/foo/v1/api", with: #"\2/instance/\1"#) == "/v1/api/instance/foo")
        #expect(try regex.replacingMatches(in: "/other", with: #"\1"#) == "/other", "no match leaves the subject as it is")
    }

    @Test func searchModeReplacesEveryMatchIncludingEmptyOnes() throws {
        let dash = try CompiledRegex("-", mode: .search)
        #expect(try dash.replacingMatches(in: "/a-b-c", with: "/") == "/a/b/c")
        let empty = try CompiledRegex("x*", mode: .search)
        #expect(try empty.replacingMatches(in: "ab", with: "-") == "-a-b-")
        #expect(try CompiledRegex("zzz", mode: .search).replacingMatches(in: "/keep", with: "q") == "/keep")
    }

    @Test func matchesUTF8Subjects() throws {
        let regex = try CompiledRegex("/caf.")
        #expect(try regex.matches("/café"))
    }
}
