import GatehouseHTTP1
import Testing

@Suite struct RequestDecoderTests {
    @Test(arguments: [Int.max, 1, 7])
    func requestLineFieldsAndBodyInAnyReadSizes(bytesPerRead: Int) {
        let events = RequestEvents("POST /upload?x=1 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
                                   + "X-Empty:\r\nX-Spaced: \t padded value \t\r\n\r\nhello", bytesPerRead: bytesPerRead)
        #expect(events.error == nil)
        let head = try! #require(events.heads.first)
        #expect(head.method == "POST")
        #expect(head.target == "/upload?x=1")
        #expect(head.version == .http1_1)
        #expect(head.framing == .contentLength(5))
        #expect(head.headers.first("host") == "a.example")
        #expect(head.headers.first("x-empty") == "")
        #expect(head.headers.first("X-SPACED") == "padded value", "names match in any case; OWS is trimmed")
        #expect(events.bodyText == "hello")
        #expect(events.ends == 1)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let events = RequestEvents("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n", bytesPerRead: 3)
        #expect(events.error == nil)
        #expect(events.heads.first?.framing == .chunked)
        #expect(events.bodyText == "hello world")
        #expect(events.trailers.first??.first("x-checksum") == "abc")
    }

    @Test func pipelinedRequestsDecodeInOrderAndLeadingBlankLinesAreSkipped() {
        let events = RequestEvents("GET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(events.heads.map(\.target) == ["/a", "/b"])
        #expect(events.ends == 2)
    }

    @Test func keepAliveFollowsVersionAndConnectionHeader() {
        #expect(RequestEvents("GET / HTTP/1.1\r\nHost: a\r\n\r\n").heads[0].keepAlive)
        #expect(!RequestEvents("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").heads[0].keepAlive)
        #expect(!RequestEvents("GET / HTTP/1.0\r\n\r\n").heads[0].keepAlive)
        #expect(RequestEvents("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").heads[0].keepAlive)
        let named = RequestEvents("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\n\r\n").heads[0]
        #expect(named.connection.namesOtherHeaders)
    }

    @Test func expectContinueAndHostCountAreRecorded() {
        let head = RequestEvents("PUT / HTTP/1.1\r\nHost: a\r\nhost: b\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").heads[0]
        #expect(head.expectsContinue)
        #expect(head.hostCount == 2)
    }

    @Test(arguments: [
        "THIS IS NOT HTTP\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: v\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nName : v\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n",
    ])
    func malformedRequestsAreRejected(_ text: String) {
        let events = RequestEvents(text)
        guard case .malformed = events.error else {
            Issue.record("accepted or wrong error: \(String(describing: events.error)) for \(text.debugDescription)")
            return
        }
    }

    @Test func repeatedIdenticalContentLengthIsOneLength() {
        let events = RequestEvents("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(events.error == nil)
        #expect(events.bodyText == "ok")
    }

    @Test func transferCodingsOtherThanChunkedAreNotImplemented() {
        #expect(RequestEvents("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").error == .unsupportedTransferEncoding)
        #expect(RequestEvents("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").error == .unsupportedTransferEncoding)
    }

    @Test func headLimitsGive431() {
        var limits = HTTP1Limits(maxHeadBytes: 64, maxHeaderCount: 3)
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100)
        #expect(RequestEvents(big, bytesPerRead: 10, limits: limits).error == .headersTooLarge,
                "an incomplete head over the limit is refused before it ends")
        limits.maxHeadBytes = 1000
        let many = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        #expect(RequestEvents(many, limits: limits).error == .headersTooLarge)
    }
}
