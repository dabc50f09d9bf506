import GatehouseRegex
import GatehouseRouting
import Testing

@Suite struct RouteActionTests {
    @Test func weightedChoiceFollowsTheWeights() throws {
        let action = ForwardAction(destinations: [
            WeightedDestination(cluster: "a", clusterIndex: 0, weight: 80),
            WeightedDestination(cluster: "b", clusterIndex: 0, weight: 20),
            WeightedDestination(cluster: "never", clusterIndex: 0, weight: 0),
        ])
        var generator = SystemRandomNumberGenerator()
        var counts: [String: Int] = [:]
        let draws = 20_000
        for _ in 0..<draws { counts[action.pick(draw: generator.next())!.cluster, default: 0] += 1 }
        #expect(counts["never"] == nil, "weight 0 gets nothing")
        let share = Double(counts["a", default: 0]) / Double(draws)
        #expect(abs(share - 0.8) < 0.02, "a got \(share)")
    }

    @Test func weightedChoiceIsDeterministicForADraw() throws {
        let action = ForwardAction(destinations: [WeightedDestination(cluster: "a", clusterIndex: 0, weight: 50),
                                                  WeightedDestination(cluster: "b", clusterIndex: 0, weight: 50)])
        #expect(action.pick(draw: 0)?.cluster == "a")
        #expect(action.pick(draw: 49)?.cluster == "a")
        #expect(action.pick(draw: 50)?.cluster == "b")
        #expect(action.pick(draw: 99)?.cluster == "b")
        #expect(action.pick(draw: 100)?.cluster == "a")
    }

    @Test func singleDestinationWithoutWeightTakesEverything() throws {
        let action = ForwardAction(destinations: [WeightedDestination(cluster: "only", clusterIndex: 0, weight: 0)])
        #expect(action.pick(draw: 12345)?.cluster == "only")
    }

    @Test func prefixRewriteReplacesTheMatchedPrefix() throws {
        let rewrite = Rewrite(uri: "/v2/")
        #expect(try rewrite.rewritePath("/api/users", matchedBy: RouteMatch(uri: .prefix("/api/"))) == "/v2/users")
        #expect(try rewrite.rewritePath("/API/users", matchedBy: RouteMatch(uri: .prefix("/api/"), ignoreUriCase: true)) == "/v2/users")
        #expect(try Rewrite(uri: "/new").rewritePath("/old", matchedBy: RouteMatch(uri: .exact("/old"))) == "/new")
        #expect(try Rewrite(uri: "/base/").rewritePath("/x/y", matchedBy: nil) == "/base/x/y")
    }

    @Test func regexRewriteUsesCaptureGroups() throws {
        let rewrite = Rewrite(regex: (try CompiledRegex("^/service/([^/]+)(/.*)$", mode: .search),
                                      template: #"\2/instance/\1"#))
        #expect(try rewrite.rewritePath("/service/foo/v1/api", matchedBy: nil) == "/v1/api/instance/foo")
        #expect(try rewrite.rewritePath("/unmatched", matchedBy: nil) == "/unmatched")
        let global = Rewrite(regex: (try CompiledRegex("one", mode: .search), template: "two"))
        #expect(try global.rewritePath("/xxx/one/yyy/one/zzz", matchedBy: nil) == "/xxx/two/yyy/two/zzz",
                "every match is replaced, as RE2::GlobalReplace does")
    }

    @Test func redirectKeepsWhatItDoesNotChange() throws {
        let request = input("/old/page?x=1", authority: "a.com:8080")
        #expect(RedirectAction(uri: "/new").location(for: request) == "http://a.com:8080/new?x=1")
        #expect(RedirectAction(authority: "b.com").location(for: request) == "http://b.com:8080/old/page?x=1")
        #expect(RedirectAction(scheme: "https", port: 8443).location(for: request) == "https://a.com:8443/old/page?x=1")
        #expect(RedirectAction(derivePort: .fromProtocolDefault).location(for: request) == "http://a.com/old/page?x=1")
        #expect(RedirectAction(uri: "/n?y=2").location(for: request) == "http://a.com:8080/n?y=2")
        #expect(RedirectAction(scheme: "https").location(for: input("/p", authority: "a.com:80")) == "https://a.com/p")
        #expect(RedirectAction(derivePort: .fromRequestPort).location(for: input("/p", authority: "a.com", port: 8080))
            == "http://a.com:8080/p")
        #expect(RedirectAction().code == 301)
    }

    @Test func headerMutationRemovesThenSetsThenAdds() throws {
        var headers: [(String, String)] = [("x-a", "1"), ("x-b", "2")]
        let mutation = HeaderMutation(overwrite: [("x-a", "new")], append: [("x-b", "3")], remove: ["x-b"])
        mutation.apply(remove: { name in headers.removeAll { $0.0 == name } },
                       replace: { name, value in headers.removeAll { $0.0 == name }; headers.append((name, value)) },
                       append: { headers.append(($0, $1)) })
        #expect(headers.map { "\($0.0)=\($0.1)" } == ["x-a=new", "x-b=3"])
    }
}
