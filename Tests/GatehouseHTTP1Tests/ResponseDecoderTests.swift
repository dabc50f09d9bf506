import GatehouseHTTP1
import Testing

@Suite struct ResponseDecoderTests {
    @Test func contentLengthResponse() {
        let events = ResponseEvents("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: origin\r\n\r\nabc", bytesPerRead: 2)
        #expect(events.heads.first?.status == 200)
        #expect(events.heads.first?.keepAlive == true)
        #expect(events.bodyText == "abc")
        #expect(events.ends == 1)
    }

    @Test func bodylessStatusesAndHEADIgnoreTheirLengthHeaders() {
        for text in ["HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                     "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"] {
            let events = ResponseEvents(text)
            #expect(events.ends == 1 && events.body.isEmpty)
        }
        let head = ResponseEvents("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", toHEAD: true)
        #expect(head.ends == 1 && head.heads[0].framing == .none)
    }

    @Test func interimResponsesAreSkipped() {
        let events = ResponseEvents("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                                    + "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(events.heads.map(\.status) == [201])
        #expect(events.ends == 1)
    }

    @Test func bodyWithoutLengthRunsToClose() {
        let open = ResponseEvents("HTTP/1.1 200 OK\r\n\r\npartial")
        #expect(open.ends == 0, "without the close the body has not ended")
        let closed = ResponseEvents("HTTP/1.1 200 OK\r\n\r\nall of it", closeAfter: true)
        #expect(closed.bodyText == "all of it")
        #expect(closed.ends == 1)
        #expect(closed.heads[0].keepAlive == false)
    }

    @Test func chunkedResponseWithTrailers() {
        let events = ResponseEvents("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + "3\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n", bytesPerRead: 4)
        #expect(events.bodyText == "abc")
        #expect(events.trailers?.first("grpc-status") == "0")
    }

    @Test func truncatedFixedLengthBodyDoesNotEndOnClose() {
        let events = ResponseEvents("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", closeAfter: true)
        #expect(events.ends == 0)
    }

    @Test(arguments: ["HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\u{1}\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "ICY 200 OK\r\n\r\n"])
    func malformedResponsesAreRejected(_ text: String) {
        #expect(ResponseEvents(text).error != nil)
    }
}
