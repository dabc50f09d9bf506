import GatehouseHTTP1
import GatehouseRouting
import NIOCore
import NIOHPACK
import Testing
@testable import GatehouseProxy

/// A request head as the downstream decoder would produce it from these fields.
func requestHead(target: String = "/", version: String = "HTTP/1.1", method: String = "GET",
                 _ fields: [(String, String)]) -> RequestHead {
    var text = "\(method) \(target) \(version)\r\n"
    for (name, value) in fields { text += "\(name): \(value)\r\n" }
    text += "\r\n"
    var decoder = HTTP1RequestDecoder(limits: HTTP1Limits())
    var bytes = ByteBuffer(string: text)
    guard case .head(let head)? = try? decoder.next(&bytes) else { fatalError("test head does not parse: \(text)") }
    return head
}

/// A response head as the upstream decoder would produce it.
func responseHead(_ fields: [(String, String)]) -> HTTP1ResponseHead {
    var text = "HTTP/1.1 200 OK\r\n"
    for (name, value) in fields { text += "\(name): \(value)\r\n" }
    text += "\r\n"
    var decoder = HTTP1ResponseDecoder(limits: HTTP1Limits())
    var bytes = ByteBuffer(string: text)
    guard case .head(let head)? = try? decoder.next(&bytes) else { fatalError("test head does not parse: \(text)") }
    return head
}

extension HTTPHeaderBlock {
    subscript(name: String) -> [String] { values(name) }
    var names: [String] { pairs.map(\.name) }
}

@Suite struct ForwardingHeadersTests {
    private let hopByHop: [(String, String)] = [
        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "5"), ("TE", "trailers"),
        ("Upgrade", "h2c"), ("Proxy-Connection", "x"), ("Content-Length", "3"), ("X-Kept", "yes"),
    ]

    @Test func hopByHopHeadersAndThoseConnectionNamesAreRemoved() throws {
        let head = requestHead(hopByHop)
        var upstream = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&upstream, connection: head.connection, clientAddress: nil,
                                                 scheme: "http", requestID: "r", replacesHost: false)
        #expect(upstream.names.sorted() == ["X-Kept", "x-forwarded-proto", "x-request-id"],
                "framing is the builder's to write, never forwarded as received")
        let response = responseHead(hopByHop)
        var downstream = response.headers
        ForwardingHeaders.prepareDownstreamResponse(&downstream, connection: response.connection, serviceTimeMillis: 7)
        #expect(downstream.names.sorted() == ["X-Kept", "server", "x-envoy-upstream-service-time"])
        #expect(ForwardingHeaders.downstreamContentLength(response) == 3)
        #expect(downstream["x-envoy-upstream-service-time"] == ["7"])
        #expect(downstream["server"] == ["istio-envoy"])
    }

    @Test func chunkedResponsesLoseTheirFramingHeaders() throws {
        let response = responseHead([("Transfer-Encoding", "chunked"), ("Content-Length", "10"), ("Server", "x")])
        var downstream = response.headers
        ForwardingHeaders.prepareDownstreamResponse(&downstream, connection: response.connection, serviceTimeMillis: 0)
        #expect(downstream["transfer-encoding"].isEmpty && downstream["content-length"].isEmpty,
                "the downstream side frames the body itself")
        #expect(ForwardingHeaders.downstreamContentLength(response) == nil, "a chunked body keeps no length")
        #expect(downstream["server"] == ["istio-envoy"])
    }

    @Test func upstreamRequestGetsForwardingHeadersAndLosesEnvoyInternalOnes() throws {
        let head = requestHead([("Host", "a.com"), ("X-Forwarded-For", "203.0.113.7"),
                                ("X-Envoy-Original-Path", "/admin"), ("x-envoy-retry-on", "5xx"),
                                ("X-Request-Id", "abc"), ("X-Forwarded-Proto", "https"), ("Expect", "100-continue")])
        var out = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&out, connection: head.connection, clientAddress: "10.0.0.9",
                                                 scheme: "http", requestID: "abc", replacesHost: false)
        #expect(out["x-forwarded-for"] == ["203.0.113.7,10.0.0.9"])
        #expect(out["x-forwarded-proto"] == ["http"], "the client cannot claim https")
        #expect(out["x-request-id"] == ["abc"])
        #expect(out["host"] == ["a.com"])
        #expect(out["x-envoy-original-path"].isEmpty)
        #expect(out["x-envoy-retry-on"].isEmpty)
        #expect(out["expect"].isEmpty)
        var replaced = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&replaced, connection: head.connection, clientAddress: nil,
                                                 scheme: "http", requestID: "abc", replacesHost: true)
        #expect(replaced["host"].isEmpty, "the caller writes the new Host")
    }

    @Test func repeatedForwardedForHeadersAreOneList() throws {
        let head = requestHead([("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
        var out = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&out, connection: head.connection, clientAddress: "3.3.3.3",
                                                 scheme: "http", requestID: "r", replacesHost: false)
        #expect(out["x-forwarded-for"] == ["1.1.1.1,2.2.2.2,3.3.3.3"])
    }

    @Test func requestIDsAreVersion4UUIDs() throws {
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
    func head(_ uri: String, host: String? = "a.com", version: String = "HTTP/1.1") -> RequestHead {
        requestHead(target: uri, version: version, host.map { [("host", $0)] } ?? [])
    }

    @Test func originFormTakesTheHostHeader() throws {
        let target = try #require(RequestTarget(head: head("/p?q=1")))
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

    @Test func badTargetsAreRejected() throws {
        #expect(RequestTarget(head: head("/p", host: nil)) == nil, "HTTP/1.1 needs a Host")
        #expect(RequestTarget(head: head("p")) == nil)
        #expect(RequestTarget(head: head("ftp://x/")) == nil)
        #expect(RequestTarget(head: requestHead([("host", "a.com"), ("host", "b.com")])) == nil)
        #expect(RequestTarget(head: head("/", host: nil, version: "HTTP/1.0")) != nil, "HTTP/1.0 may omit Host")
    }

    @Test func upstreamRequestAppliesRewriteAndMutationsInOrder() throws {
        let original = requestHead(target: "/api/users?id=1", method: "POST",
                                   [("host", "a.com"), ("x-drop", "1"), ("expect", "100-continue"), ("content-length", "2")])
        let target = try #require(RequestTarget(head: original))
        let route = Route(matches: [RouteMatch(uri: .prefix("/api/"))], action: .directResponse(status: 200, body: []),
                          requestHeaders: HeaderMutation(overwrite: [("x-route", "r")], append: [], remove: ["x-drop"]))
        let destination = WeightedDestination(cluster: "c", clusterIndex: 0, weight: 100,
                                              requestHeaders: HeaderMutation(overwrite: [("x-route", "d")], append: [], remove: []))
        let upstream = try #require(try UpstreamRequestBuilder.build(
            head: original, target: target, route: route, matched: route.matches.first,
            rewrite: Rewrite(uri: "/v2/", authority: "backend.internal"), destination: destination,
            clientIP: "10.0.0.1", requestID: "rid", allocator: ByteBufferAllocator()))
        #expect(upstream.framing == .contentLength(2))
        // What the upstream receives, parsed back as a server would.
        guard case .http1(var bytes) = upstream.head else {
            Issue.record("an HTTP/1.1 cluster gets an HTTP/1.1 head")
            return
        }
        var decoder = HTTP1RequestDecoder(limits: HTTP1Limits())
        guard case .head(let sent)? = try decoder.next(&bytes) else {
            Issue.record("the upstream head does not parse")
            return
        }
        #expect(sent.target == "/v2/users?id=1")
        #expect(sent.method == "POST")
        #expect(sent.version == .http1_1)
        #expect(sent.headers["host"] == ["backend.internal"])
        #expect(sent.headers["x-envoy-original-path"] == ["/api/users?id=1"])
        #expect(sent.headers["x-route"] == ["r"], "route-level mutations apply after destination-level ones")
        #expect(sent.headers["x-drop"].isEmpty)
        #expect(sent.headers["expect"].isEmpty)
        #expect(sent.headers["content-length"] == ["2"])
        #expect(sent.headers["x-forwarded-for"] == ["10.0.0.1"])
    }
}

@Suite struct HTTP2UpstreamRequestTests {
    @Test func http2ClustersGetPseudoHeadersAndKeepTETrailers() throws {
        let original = requestHead(target: "/pkg.Svc/Call", method: "POST",
                                   [("host", "gw.test"), ("te", "trailers"), ("content-type", "application/grpc"),
                                    ("Connection", "keep-alive"), ("X-Mixed-Case", "v")])
        let target = try #require(RequestTarget(head: original))
        let route = Route(matches: [], action: .directResponse(status: 200, body: []))
        let upstream = try #require(try UpstreamRequestBuilder.build(
            head: original, target: target, route: route, matched: nil, rewrite: nil,
            destination: WeightedDestination(cluster: "c", clusterIndex: 0, weight: 100), clientIP: "10.0.0.1", requestID: "rid",
            http2: true, allocator: ByteBufferAllocator()))
        guard case .http2(let fields) = upstream.head else {
            Issue.record("an HTTP/2 cluster gets an HTTP/2 head")
            return
        }
        let names = fields.map(\.name)
        #expect(Array(names.prefix(4)) == [":method", ":scheme", ":authority", ":path"], "pseudo-headers first")
        #expect(fields.first(name: ":authority") == "gw.test")
        #expect(fields.first(name: ":path") == "/pkg.Svc/Call")
        #expect(fields.first(name: "te") == "trailers", "gRPC needs te: trailers")
        #expect(fields.first(name: "x-mixed-case") == "v", "HTTP/2 field names are lowercase")
        #expect(!names.contains("connection") && !names.contains("host"))
        #expect(fields.first(name: "x-forwarded-for") == "10.0.0.1")
    }
}
