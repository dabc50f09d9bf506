import NIOCore
import Testing
@testable import GatehouseProxy

@Suite struct HTTP2PrefaceTests {
    func check(_ text: String) -> HTTP2Server.PrefaceCheck { HTTP2Server.check(ByteBuffer(string: text)) }

    @Test func theFullPrefaceIsHTTP2() throws {
        #expect(check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == .http2)
        #expect(check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u{0}\u{0}\u{0}\u{4}") == .http2, "frames may follow in the same read")
    }

    @Test func aPrefixOfThePrefaceWaitsForMore() throws {
        #expect(check("P") == .needMoreBytes)
        #expect(check("PRI * HTTP/2.0\r\n") == .needMoreBytes)
    }

    @Test func http11RequestsAreDecidedAtTheirFirstDifferingByte() throws {
        #expect(check("GET / HTTP/1.1\r\n") == .http1)
        #expect(check("POST / HTTP/1.1\r\n") == .http1, "shares only the P")
        #expect(check("PRI / HTTP/1.1\r\n\r\n") == .http1)
    }
}
