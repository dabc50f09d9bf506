import GatehouseHTTP1
import GatehouseRouting
import Testing
@testable import GatehouseProxy

/// Splitting a request-target into path and query, and the authority's trailing dot, on bytes.
@Suite struct RequestTargetBytesTests {
    @Test(arguments: [
        ("/a/b", "/a/b", nil),
        ("/a?x=1&y=2", "/a", "x=1&y=2"),
        ("/a?", "/a", ""),
        ("/a#frag", "/a", nil),
        ("/a?x=1#frag?no", "/a", "x=1"),
        ("/é/ü?q=ß", "/é/ü", "q=ß"),
    ] as [(String, String, String?)])
    func aTargetSplitsAtTheFirstQuestionMarkBeforeAnyFragment(_ target: String, _ path: String, _ query: String?) {
        let split = RouteInput.split(target: target)
        #expect(split.path == path)
        #expect(split.query == query)
    }

    @Test(arguments: [
        ("a.com.", "a.com"),
        ("a.com.:8080", "a.com:8080"),
        ("a.com:8080", "a.com:8080"),
        ("a.com", "a.com"),
        ("[::1]:8080", "[::1]:8080"),
        ("bücher.de.:443", "bücher.de:443"),
        ("a.:", "a:"),
        (".:80", ":80"),
    ])
    func aTrailingHostDotIsDroppedWithOrWithoutAPort(_ authority: String, _ stripped: String) throws {
        var target = try #require(RequestTarget(uri: "/", method: "GET", version: .http1_1, host: authority, hostCount: 1))
        target.stripTrailingHostDot()
        #expect(target.authority == stripped)
    }
}
