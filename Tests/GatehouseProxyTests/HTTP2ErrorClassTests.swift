import GatehouseTelemetry
import NIOHTTP2
import Testing
@testable import GatehouseProxy

/// Which HTTP/2 errors cost only a stream, and which close the connection.
@Suite struct HTTP2ErrorClassTests {
    @Test func headerValidationErrorsAreStreamErrors() throws {
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.forbiddenHeaderField(name: "connection", value: "x"))
                == .http2StreamError)
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.contentLengthViolated()) == .http2StreamError)
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.missingPseudoHeader(":path")) == .http2StreamError)
    }

    @Test func floodsAreTheirOwnClass() throws {
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.excessiveRSTFrames()) == .http2Flood)
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.excessiveContinuationFrames()) == .http2Flood)
    }

    @Test func anythingElseClosesTheConnection() throws {
        #expect(HTTP2ConnectionErrorHandler.classify(NIOHTTP2Errors.badClientMagic()) == .http2ConnectionError)
    }
}
