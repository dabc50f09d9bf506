import GatehouseRouting
import NIOHTTP1
import Testing
@testable import GatehouseProxy

@Suite struct ForwardingHeadersTests {
    @Test func hopByHopHeadersAndThoseConnectionNamesAreRemoved() {
        var headers = HTTPHeaders([("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"),
                                   ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Connection", "x"),
                                   ("Content-Length", "3"), ("X-Kept", "yes")])
        ForwardingHeaders.stripHopByHop(&headers)
        #expect(headers.map(\.name).sorted() == ["Content-Length", "X-Kept"])
    }

    @Test func upstreamRequestGetsForwardingHeadersAndLosesEnvoyInternalOnes() {
        var headers = HTTPHeaders([("X-Forwarded-For", "203.0.113.7"), ("X-Envoy-Original-Path", "/admin"),
                                   ("x-envoy-retry-on", "5xx"), ("X-Request-Id", "abc")])
        ForwardingHeaders.prepareUpstreamRequest(&headers, clientAddress: "10.0.0.9", scheme: "http", requestID: "abc")
        #expect(headers["x-forwarded-for"] == ["203.0.113.7,10.0.0.9"])
        #expect(headers["x-forwarded-proto"] == ["http"])
        #expect(headers["x-request-id"] == ["abc"])
        #expect(headers["x-envoy-original-path"].isEmpty)
        #expect(headers["x-envoy-retry-on"].isEmpty)
    }

    @Test func repeatedForwardedForHeadersAreOneList() {
        var headers = HTTPHeaders([("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
        ForwardingHeaders.prepareUpstreamRequest(&headers, clientAddress: "3.3.3.3", scheme: "http", requestID: "r")
        #expect(headers["x-forwarded-for"] == ["1.1.1.1,2.2.2.2,3.3.3.3"])
    }

    @Test func envoyPrefixCheckIsCaseInsensitiveAndExact() {
        #expect(ForwardingHeaders.isEnvoyInternal("X-Envoy-Foo"))
        #expect(ForwardingHeaders.isEnvoyInternal("x-envoy-"))
        #expect(!ForwardingHeaders.isEnvoyInternal("x-envoy"))
        #expect(!ForwardingHeaders.isEnvoyInternal("x-envoyfoo"))
    }

    @Test func requestIDsAreVersion4UUIDs() {
        let id = RequestID.generate()
        #expect(id.count == 36)
        let parts = id.split(separator: "-")
        #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
        #expect(parts[2].first == "4")
        #expect("89ab".contains(parts[3].first!))
        #expect(RequestID.generate() != id)
    }
}

@Suite struct RequestTargetTests {
    func head(_ uri: String, host: String? = "a.com", version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let host { headers.add(name: "host", value: host) }
        return HTTPRequestHead(version: version, method: .GET, uri: uri, headers: headers)
    }

    @Test func originFormTakesTheHostHeader() throws {
        let target = try #require(RequestTarget(head: head("/p?q=1#frag")))
        #expect(target.authority == "a.com")
        #expect(target.path == "/p")
        #expect(target.query == "q=1")
    }

    @Test func absoluteFormAuthorityWinsOverHost() throws {
        let target = try #require(RequestTarget(head: head("http://b.com:8080/x?y", host: "a.com")))
        #expect(target.authority == "b.com:8080")
        #expect(target.path == "/x")
        #expect(target.isAbsoluteForm)
        #expect(try #require(RequestTarget(head: head("http://b.com"))).path == "/")
    }

    @Test func badTargetsAreRejected() {
        #expect(RequestTarget(head: head("/p", host: nil)) == nil, "HTTP/1.1 needs a Host")
        #expect(RequestTarget(head: head("p")) == nil)
        #expect(RequestTarget(head: head("ftp://x/")) == nil)
        var twoHosts = head("/")
        twoHosts.headers.add(name: "host", value: "b.com")
        #expect(RequestTarget(head: twoHosts) == nil)
        #expect(RequestTarget(head: head("/", host: nil, version: .http1_0)) != nil, "HTTP/1.0 may omit Host")
    }

    @Test func upstreamRequestAppliesRewriteAndMutationsInOrder() throws {
        let original = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/users?id=1",
                                       headers: HTTPHeaders([("host", "a.com"), ("x-drop", "1"), ("expect", "100-continue")]))
        let target = try #require(RequestTarget(head: original))
        let route = Route(matches: [RouteMatch(uri: .prefix("/api/"))], action: .directResponse(status: 200, body: []),
                          requestHeaders: HeaderMutation(overwrite: [("x-route", "r")], append: [], remove: ["x-drop"]))
        let destination = WeightedDestination(cluster: "c", weight: 100,
                                              requestHeaders: HeaderMutation(overwrite: [("x-route", "d")], append: [], remove: []))
        let upstream = UpstreamRequestBuilder.build(
            head: original, target: target, route: route, matched: route.matches.first,
            rewrite: Rewrite(uri: "/v2/", authority: "backend.internal"), destination: destination,
            clientIP: "10.0.0.1", requestID: "rid")
        #expect(upstream.uri == "/v2/users?id=1")
        #expect(upstream.headers["host"] == ["backend.internal"])
        #expect(upstream.headers["x-envoy-original-path"] == ["/api/users?id=1"])
        #expect(upstream.headers["x-route"] == ["r"], "route-level mutations apply after destination-level ones")
        #expect(upstream.headers["x-drop"].isEmpty)
        #expect(upstream.headers["expect"].isEmpty)
        #expect(upstream.version == .http1_1)
    }
}
