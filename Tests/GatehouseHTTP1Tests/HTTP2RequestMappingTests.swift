import GatehouseHTTP1
import NIOCore
import Testing

/// HTTP/2 HEADERS become the same request head the HTTP/1.1 parser produces, checked as strictly
/// (RFC 9113 §8.1.1, §8.2, §8.3): what is malformed never becomes a request.
@Suite struct HTTP2RequestMappingTests {
    static let base: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":path", "/p"), (":authority", "a.example")]

    func map(_ fields: [(String, String)], endStream: Bool = true, limits: HTTP1Limits = HTTP1Limits())
        -> Result<HTTP2MappedRequest, HTTP2RequestError> {
        Result { () throws(HTTP2RequestError) in
            try HTTP2RequestMapping.map(fields, endStream: endStream, limits: limits, makeWebSocketKey: { "key==" })
        }
    }

    func details(_ fields: [(String, String)], endStream: Bool = true) -> String? {
        if case .failure(.malformed(let details)) = map(fields, endStream: endStream) { return details }
        return nil
    }

    @Test func plainRequestBecomesAnHTTP1Head() throws {
        let mapped = try map(Self.base + [("accept", "*/*"), ("cookie", "a=1"), ("cookie", "b=2")]).get()
        #expect(mapped.head.method == "GET")
        #expect(mapped.head.target == "/p")
        #expect(mapped.host == "a.example")
        #expect(mapped.head.headers.values("host") == ["a.example"])
        #expect(mapped.head.headers.values("cookie") == ["a=1; b=2"])
        #expect(mapped.head.framing == .none)
    }

    @Test(arguments: ["5,5", "+5", "-1", " 5", "5 ", "0x5", ""])
    func contentLengthMustBeOneNumber(_ value: String) {
        #expect(details(Self.base + [("content-length", value)], endStream: false) != nil)
    }

    @Test func conflictingContentLengthsAreMalformed() {
        #expect(details(Self.base + [("content-length", "5"), ("content-length", "6")], endStream: false)
            == "http2.invalid_content_length")
    }

    @Test func leadingZerosAreOneNumberAndFramingUsesIt() throws {
        let mapped = try map(Self.base + [("content-length", "05")], endStream: false).get()
        #expect(mapped.head.framing == .contentLength(5))
        #expect(mapped.head.declaredContentLength == 5)
    }

    @Test func bodyWithoutLengthIsChunkedUpstream() throws {
        #expect(try map(Self.base, endStream: false).get().head.framing == .chunked)
    }

    @Test(arguments: ["\u{1}", "\u{7F}", "\u{0}", "a\r\nb: c", "a\nb"])
    func controlBytesInValuesAreMalformed(_ bad: String) {
        #expect(details(Self.base + [("x-a", "v\(bad)v")]) == "http2.invalid_header_value")
    }

    @Test(arguments: [" v", "v ", "\tv", "v\t"])
    func blanksAtTheEndsOfValuesAreMalformed(_ value: String) {
        #expect(details(Self.base + [("x-a", value)]) == "http2.invalid_header_value")
    }

    @Test(arguments: ["X-Upper", "bad name", "x:y", "", "x\u{1}"])
    func namesMustBeLowercaseTokens(_ name: String) {
        #expect(details(Self.base + [(name, "v")]) == "http2.invalid_header_name")
    }

    @Test(arguments: ["connection", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection"])
    func connectionSpecificFieldsAreMalformed(_ name: String) {
        #expect(details(Self.base + [(name, "x")]) == "http2.connection_specific_header")
    }

    @Test func teOtherThanTrailersIsMalformed() throws {
        #expect(details(Self.base + [("te", "gzip")]) == "http2.invalid_te")
        _ = try map(Self.base + [("te", "trailers")]).get()
    }

    @Test func asteriskIsForOptionsOnly() throws {
        let star: [(String, String)] = [(":method", "GET"), (":scheme", "http"), (":path", "*"), (":authority", "a")]
        #expect(details(star) == "http2.invalid_path")
        var options = star
        options[0] = (":method", "OPTIONS")
        #expect(try map(options).get().head.target == "*")
    }

    @Test(arguments: ["p", "/a b", "http://a/b", "a/b"])
    func pathMustBeOriginForm(_ path: String) {
        #expect(details([(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "a")]) == "http2.invalid_path")
    }

    @Test func pseudoHeadersAreCheckedLikeARequestLine() {
        #expect(details([(":method", "GET"), (":scheme", "http"), (":authority", "a")]) == "http2.missing_path")
        #expect(details(Self.base + [(":path", "/again")]) == "http2.duplicate_pseudo_header")
        #expect(details([("x-a", "1")] + Self.base) == "http2.pseudo_header_after_regular")
        #expect(details(Self.base + [(":status", "200")]) != nil)
        #expect(details([(":method", "G T"), (":scheme", "http"), (":path", "/"), (":authority", "a")]) == "http2.invalid_method")
        #expect(details([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a/b@c")]) == "http2.invalid_authority")
        #expect(details(Self.base + [(":protocol", "websocket")]) == "http2.protocol_without_connect")
    }

    @Test func authorityWinsOverHostAndTwoHostsWithoutAuthorityAreMalformed() throws {
        let mapped = try map(Self.base + [("host", "other.example")]).get()
        #expect(mapped.head.headers.values("host") == ["a.example"])
        let noAuthority: [(String, String)] = [(":method", "GET"), (":scheme", "http"), (":path", "/")]
        #expect(details(noAuthority + [("host", "a"), ("host", "b")]) == "http2.invalid_authority")
    }

    @Test func tooManyFieldsAre431LikeHTTP1() {
        let fields = Self.base + (0..<11).map { ("x-\($0)", "v") }
        guard case .failure(.tooManyHeaders) = map(fields, limits: HTTP1Limits(maxHeaderCount: 10)) else {
            Issue.record("expected tooManyHeaders")
            return
        }
        // Cookie crumbs count as the one field they are joined into.
        let crumbs = Self.base + (0..<20).map { ("cookie", "c\($0)=1") }
        #expect((try? map(crumbs, limits: HTTP1Limits(maxHeaderCount: 10)).get()) != nil)
    }

    @Test func tooLargeFieldSectionIs431LikeHTTP1() {
        let fields = Self.base + [("x-big", String(repeating: "a", count: 2000))]
        guard case .failure(.headersTooLarge) = map(fields, limits: HTTP1Limits(maxHeadBytes: 1024)) else {
            Issue.record("expected the size limit to apply")
            return
        }
    }

    @Test func extendedConnectBecomesAWebSocketUpgrade() throws {
        let fields: [(String, String)] = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                                          (":path", "/ws"), (":authority", "a"), ("sec-websocket-key", "client")]
        let mapped = try map(fields, endStream: false).get()
        #expect(mapped.head.method == "GET")
        #expect(mapped.webSocketKey == "key==")
        #expect(mapped.head.headers.values("sec-websocket-key") == ["key=="])
        #expect(mapped.head.framing == .none)
        guard case .failure(.connectNotServed) = map([(":method", "CONNECT"), (":authority", "a:443")]) else {
            Issue.record("a plain CONNECT is not served")
            return
        }
    }
}
