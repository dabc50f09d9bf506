import GatehouseHTTP1
import GatehouseRouting
import GatehouseSecurity
import NIOCore
import NIOHPACK
import Testing
@testable import GatehouseProxy

/// What the gateway writes toward an upstream, whatever the client sent: framing regenerated, essential
/// headers kept, client-set identity headers replaced, claim values checked.
@Suite struct UpstreamHardeningTests {
    /// The upstream head for `original`, parsed back as an HTTP/1.1 server would.
    func sentHead(_ original: RequestHead, authentication: HeaderChanges? = nil,
                  clientCert: ClientCertForwarding = .sanitize) throws -> (RequestHead, String) {
        let target = try #require(RequestTarget(head: original))
        let route = Route(matches: [], action: .directResponse(status: 200, body: []))
        let upstream = try #require(try UpstreamRequestBuilder.build(
            head: original, target: target, route: route, matched: nil, rewrite: nil,
            destination: WeightedDestination(cluster: "c", clusterIndex: 0, weight: 100), clientIP: "10.0.0.1", requestID: "rid",
            authentication: authentication, clientCert: clientCert, allocator: ByteBufferAllocator()))
        guard case .http1(var bytes) = upstream.head else { throw Unexpected() }
        let text = String(buffer: bytes)
        var decoder = HTTP1RequestDecoder(limits: HTTP1Limits())
        guard case .head(let sent)? = try decoder.next(&bytes) else { throw Unexpected() }
        return (sent, text)
    }

    struct Unexpected: Error {}

    @Test(arguments: [("Content-Length", "  4 "), ("Content-Length", "004"), ("content-length", "4")])
    func contentLengthGoesUpstreamCanonical(_ name: String, _ value: String) throws {
        let (sent, text) = try sentHead(requestHead(method: "POST", [("host", "a"), (name, value)]))
        #expect(sent.headers["content-length"] == ["4"])
        #expect(text.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("content-length") }
            == ["content-length: 4"])
    }

    @Test(arguments: ["chunked ", "\tchunked", "Chunked", "chunked\t"])
    func chunkedGoesUpstreamCanonical(_ value: String) throws {
        let (sent, text) = try sentHead(requestHead(method: "POST", [("host", "a"), ("Transfer-Encoding", value)]))
        #expect(sent.framing == .chunked)
        #expect(text.contains("\r\ntransfer-encoding: chunked\r\n"))
        #expect(!text.lowercased().contains("content-length"))
        #expect(text.lowercased().components(separatedBy: "transfer-encoding").count == 2, "exactly one")
    }

    @Test func http2BodyWithoutLengthIsChunkedAndNeverBoth() throws {
        let mapped = try HTTP2RequestMapping.map(
            [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "a")], endStream: false,
            limits: HTTP1Limits(), makeWebSocketKey: { "" })
        let (sent, text) = try sentHead(mapped.head)
        #expect(sent.framing == .chunked)
        #expect(!text.lowercased().contains("content-length"))
    }

    @Test func bodylessPostSaysContentLengthZero() throws {
        let mapped = try HTTP2RequestMapping.map(
            [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "a")], endStream: true,
            limits: HTTP1Limits(), makeWebSocketKey: { "" })
        let (sent, _) = try sentHead(mapped.head)
        #expect(sent.headers["content-length"] == ["0"])
        #expect(sent.framing == .none)
    }

    @Test func connectionCannotNominateEssentialHeaders() throws {
        let nominated = "keep-alive, host, content-length, x-forwarded-for, x-request-id, x-forwarded-client-cert, te, x-custom"
        let (sent, _) = try sentHead(requestHead(method: "POST", [
            ("host", "a.example"), ("Connection", nominated), ("content-length", "2"), ("x-custom", "gone"),
            ("x-forwarded-for", "192.0.2.1"), ("x-request-id", "client-id"),
        ]))
        #expect(sent.headers["host"] == ["a.example"])
        #expect(sent.headers["content-length"] == ["2"])
        #expect(sent.headers["x-forwarded-for"] == ["192.0.2.1,10.0.0.1"])
        #expect(sent.headers["x-request-id"] == ["rid"])
        #expect(sent.headers["x-custom"].isEmpty, "an ordinary nominated header is still hop-by-hop")
    }

    @Test func clientEnvoyHeadersIncludingServiceTimeAreDropped() throws {
        let (sent, _) = try sentHead(requestHead([("host", "a"), ("x-envoy-upstream-service-time", "1"),
                                                  ("x-envoy-original-path", "/admin")]))
        #expect(sent.headers["x-envoy-upstream-service-time"].isEmpty)
        #expect(sent.headers["x-envoy-original-path"].isEmpty)
    }

    @Test func claimValueWithControlBytesIsDroppedNotInjected() throws {
        var changes = HeaderChanges()
        changes.set = [("x-user", "alice\r\nx-admin: true"), ("x-group", "ops"), ("x-nul", "a\u{0}b"), ("x-del", "a\u{7F}")]
        let (sent, text) = try sentHead(requestHead([("host", "a")]), authentication: changes)
        #expect(sent.headers["x-user"].isEmpty)
        #expect(sent.headers["x-admin"].isEmpty)
        #expect(sent.headers["x-nul"].isEmpty && sent.headers["x-del"].isEmpty)
        #expect(sent.headers["x-group"] == ["ops"])
        #expect(!text.contains("x-admin"))
    }

    @Test func forgedClientCertificateHeaderIsNeverForwardedByDefault() throws {
        let forged = requestHead([("host", "a"), ("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/x/sa/admin")])
        let (sanitized, _) = try sentHead(forged, clientCert: ClientCertForwarding(mode: .SANITIZE_SET, current: nil))
        #expect(sanitized.headers["x-forwarded-client-cert"].isEmpty)
        let (set, _) = try sentHead(forged, clientCert: ClientCertForwarding(mode: .SANITIZE_SET, current: "Hash=ab;URI=spiffe://me"))
        #expect(set.headers["x-forwarded-client-cert"] == ["Hash=ab;URI=spiffe://me"])
    }
}

@Suite struct ClientCertForwardingTests {
    let received = "By=x;URI=spiffe://forged"
    let current = "Hash=ab;Subject=\"CN=client\";URI=spiffe://client"

    @Test func modesFollowEnvoy() {
        func value(_ mode: ClientCertForwarding.Mode, mtls: Bool) -> String? {
            ClientCertForwarding(mode: mode, current: mtls ? current : nil).upstreamValue(received: received)
        }
        #expect(value(.SANITIZE, mtls: true) == nil)
        #expect(value(.SANITIZE, mtls: false) == nil)
        #expect(value(.SANITIZE_SET, mtls: true) == current)
        #expect(value(.SANITIZE_SET, mtls: false) == nil)
        #expect(value(.FORWARD_ONLY, mtls: true) == received)
        #expect(value(.FORWARD_ONLY, mtls: false) == nil, "Envoy sanitizes on a connection that is not mTLS")
        #expect(value(.APPEND_FORWARD, mtls: true) == "\(received),\(current)")
        #expect(value(.APPEND_FORWARD, mtls: false) == nil)
        #expect(value(.ALWAYS_FORWARD_ONLY, mtls: false) == received)
    }

    @Test func receivedHeaderIsReadOnlyWhenAModeUsesIt() {
        #expect(!ClientCertForwarding(mode: .SANITIZE_SET, current: current).readsReceived)
        #expect(ClientCertForwarding(mode: .APPEND_FORWARD, current: current).readsReceived)
        #expect(!ClientCertForwarding(mode: .APPEND_FORWARD, current: nil).readsReceived)
    }
}

@Suite struct TrailerFieldTests {
    @Test func prohibitedTrailerFieldsAreDropped() {
        var trailers = HTTPHeaderBlock([
            ("grpc-status", "0"), ("Content-Length", "5"), ("transfer-encoding", "chunked"), ("Host", "evil"),
            ("authorization", "Bearer x"), ("x-envoy-foo", "1"), ("x-checksum", "abc"), ("set-cookie", "a=b"),
            ("content-type", "text/html"),
        ])
        #expect(trailers.removeProhibitedTrailerFields() == 7)
        #expect(trailers.names == ["grpc-status", "x-checksum"])
    }
}
