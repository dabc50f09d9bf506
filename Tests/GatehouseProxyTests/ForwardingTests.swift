import GatehouseRouting
import NIOHTTP1
import Testing
@testable import GatehouseProxy

@Suite struct ForwardingHeadersTests {
    @Test func hopByHopHeadersAndThoseConnectionNamesAreRemoved() {
        let headers = HTTPHeaders([("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"),
                                   ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Connection", "x"),
                                   ("Content-Length", "3"), ("X-Kept", "yes")])
        let upstream = ForwardingHeaders.upstreamRequest(headers, clientAddress: nil, scheme: "http",
                                                         requestID: "r", authority: nil)
        #expect(upstream.map(\.name).sorted() == ["Content-Length", "X-Kept", "x-forwarded-proto", "x-request-id"])
        let response = ForwardingHeaders.downstreamResponse(headers, serviceTimeMillis: 7)
        #expect(response.map(\.name).sorted() == ["Content-Length", "X-Kept", "server", "x-envoy-upstream-service-time"])
        #expect(response["x-envoy-upstream-service-time"] == ["7"])
        #expect(response["server"] == ["istio-envoy"])
    }

    @Test func upstreamRequestGetsForwardingHeadersAndLosesEnvoyInternalOnes() {
        let headers = HTTPHeaders([("Host", "a.com"), ("X-Forwarded-For", "203.0.113.7"),
                                   ("X-Envoy-Original-Path", "/admin"), ("x-envoy-retry-on", "5xx"),
                                   ("X-Request-Id", "abc"), ("X-Forwarded-Proto", "https"), ("Expect", "100-continue")])
        let out = ForwardingHeaders.upstreamRequest(headers, clientAddress: "10.0.0.9", scheme: "http",
                                                    requestID: "abc", authority: nil)
        #expect(out["x-forwarded-for"] == ["203.0.113.7,10.0.0.9"])
        #expect(out["x-forwarded-proto"] == ["http"], "the client cannot claim https")
        #expect(out["x-request-id"] == ["abc"])
        #expect(out["host"] == ["a.com"])
        #expect(out["x-envoy-original-path"].isEmpty)
        #expect(out["x-envoy-retry-on"].isEmpty)
        #expect(out["expect"].isEmpty)
        let rewritten = ForwardingHeaders.upstreamRequest(headers, clientAddress: nil, scheme: "http",
                                                          requestID: "abc", authority: "b.internal")
        #expect(rewritten["host"] == ["b.internal"])
    }

    @Test func repeatedForwardedForHeadersAreOneList() {
        let headers = HTTPHeaders([("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
        let out = ForwardingHeaders.upstreamRequest(headers, clientAddress: "3.3.3.3", scheme: "http",
                                                    requestID: "r", authority: nil)
        #expect(out["x-forwarded-for"] == ["1.1.1.1,2.2.2.2,3.3.3.3"])
    }

    @Test func headerRolesAreRecognisedInAnyCase() {
        #expect(HeaderName.role("HOST") == .host)
        #expect(HeaderName.role("Transfer-Encoding") == .transferEncoding)
        #expect(HeaderName.role("X-ENVOY-anything") == .envoyInternal)
        #expect(HeaderName.role("x-envoy") == .other)
        #expect(HeaderName.role("x-envoy-abcd") == .envoyInternal, "12 bytes, like x-request-id")
        #expect(HeaderName.role("X-Envoy-Ab") == .envoyInternal, "10 bytes, like connection")
        #expect(HeaderName.role("hosts") == .other)
        let summary = RequestHeaderSummary(HTTPHeaders([("Host", "a"), ("host", "b"), ("User-Agent", "curl"),
                                                        ("EXPECT", "100-Continue"), ("x-request-id", "")]))
        #expect(summary.hostCount == 2 && summary.host == "a")
        #expect(summary.userAgent == "curl")
        #expect(summary.expectsContinue)
        #expect(summary.requestID == nil, "an empty x-request-id is replaced")
    }

    @Test func envoyPrefixCheckIsCaseInsensitiveAndExact() {
        #expect(HeaderName.hasPrefix("X-Envoy-Foo", "x-envoy-"))
        #expect(HeaderName.hasPrefix("x-envoy-", "x-envoy-"))
        #expect(!HeaderName.hasPrefix("x-envoy", "x-envoy-"))
        #expect(!HeaderName.hasPrefix("x-envoyfoo", "x-envoy-"))
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
