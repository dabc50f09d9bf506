import GatehouseRegex
import Testing

@Suite struct CompiledRegexTests {
    @Test func matchesTheWholeSubjectLikeRE2() throws {
        let digits = try CompiledRegex(#"\d+$"#)
        #expect(digits.matches("123"))
        #expect(!digits.matches("a123"))
        let prefix = try CompiledRegex("/api/.*")
        #expect(prefix.matches("/api/v1"))
        #expect(!prefix.matches("/x/api/v1"))
        let alternation = try CompiledRegex("a|ab")
        #expect(alternation.matches("ab"), "full match must try the longer branch")
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

    @Test func catastrophicBacktrackingIsCutOffByTheMatchLimit() throws {
        let regex = try CompiledRegex("(a+)+b", matchLimit: 10_000)
        let subject = String(repeating: "a", count: 40)
        #expect(!regex.matches(subject))
    }

    @Test func substitutesCaptureGroups() throws {
        let regex = try CompiledRegex("^/service/([^/]+)(/.*)$")
        #expect(regex.replacingMatches(in: "/service/foo/v1/api", with: #"\2/instance/\1"#) == "/v1/api/instance/foo")
        #expect(regex.replacingMatches(in: "/other", with: #"\1"#) == "/other", "no match leaves the subject as it is")
    }

    @Test func searchModeReplacesEveryMatchIncludingEmptyOnes() throws {
        let dash = try CompiledRegex("-", mode: .search)
        #expect(dash.replacingMatches(in: "/a-b-c", with: "/") == "/a/b/c")
        let empty = try CompiledRegex("x*", mode: .search)
        #expect(empty.replacingMatches(in: "ab", with: "-") == "-a-b-")
        #expect(try CompiledRegex("zzz", mode: .search).replacingMatches(in: "/keep", with: "q") == "/keep")
    }

    @Test func matchesUTF8Subjects() throws {
        let regex = try CompiledRegex("/caf.")
        #expect(regex.matches("/café"))
    }
}
