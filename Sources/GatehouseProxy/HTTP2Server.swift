import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore
import NIOHTTP2

/// Serves HTTP/2 on a connection (after ALPN `h2`, or h2c prior knowledge on a plain port): NIO's HTTP/2
/// handler for the frame layer and the protocol's limits (CONTINUATION floods, rapid resets, header
/// list size), and one `HTTP2ConnectionHandler` serving every stream of the connection.
enum HTTP2Server {
    /// The HTTP/2 connection preface a prior-knowledge client starts with (RFC 9113 §3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    enum PrefaceCheck { case http1, http2, needMoreBytes }

    /// Whether bytes a plain connection starts with are HTTP/2's preface. An HTTP/1.1 request line
    /// differs within its first bytes, so HTTP/1.1 never waits on this.
    static func check(_ bytes: ByteBuffer) -> PrefaceCheck {
        let count = min(bytes.readableBytes, preface.count)
        let matches = bytes.withUnsafeReadableBytes { raw in
            (0..<count).allSatisfy { raw[$0] == preface[$0] }
        }
        guard matches else { return .http1 }
        return count == preface.count ? .http2 : .needMoreBytes
    }

    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations,
                          runtime: ProxyRuntime, loop: LoopContext, port: Int, tls: DownstreamTLS?) throws {
        let settings = runtime.store.snapshot.settings
        let limit = Int(settings.maxConcurrentStreams)
        // NIO enforces a higher cap than the client is told (see HTTP2PrefaceSettings): streams between the
        // two are refused one by one by the connection handler.
        let hardCap = HTTP2PrefaceSettings.hardCap(for: limit)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: hardCap),
            HTTP2Setting(parameter: .maxHeaderListSize, value: settings.maxRequestHeaderBytes),
            // RFC 8441: clients may open WebSocket streams with an extended CONNECT.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        // Late frames on a refused stream are ignored only while NIO remembers the reset.
        connection.maximumRecentlyResetStreams = max(connection.maximumRecentlyResetStreams, hardCap)
        let idle = TimeAmount.nanoseconds(settings.idleTimeoutNanoseconds)
        let handler = HTTP2ConnectionHandler(runtime: runtime, loop: loop, listenerPort: port, tls: tls,
                                             maxConcurrentStreams: limit, idleTimeout: idle > .zero ? idle : nil)
        try pipeline.addHandler(FlushCoalescingHandler())
        try pipeline.addHandler(HTTP2PrefaceSettingsHandler(maxConcurrentStreams: limit))
        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: handler.frameDelegate,
                                                connectionConfiguration: connection,
                                                streamConfiguration: NIOHTTP2Handler.StreamConfiguration()))
        try pipeline.addHandler(handler)
        try pipeline.addHandler(HTTP2ConnectionErrorHandler(metrics: runtime.metrics))
    }
}

/// Handles the errors NIO's HTTP/2 handler reports on the connection. A stream error (malformed
/// headers, a content-length that lies) has already cost only its stream a RST_STREAM: the connection
/// and its other streams go on. Anything else is a connection error, for which NIO has sent GOAWAY and
/// leaves closing to the pipeline. Each is counted.
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Never

    /// Nil on upstream connections: their errors are not the clients' doing.
    private let metrics: GatewayMetrics?
    init(metrics: GatewayMetrics?) { self.metrics = metrics }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let event = Self.classify(error)
        metrics?.record(event)
        if event != .http2StreamError { context.close(promise: nil) }
    }

    /// NIO raises these only as stream errors (header validation, RFC 9113 §8.1.1 and §8.2); other
    /// types, some of which can be either, close the connection, the safe side.
    static func classify(_ error: Error) -> ProtectionEvent {
        switch error {
        case is NIOHTTP2Errors.ExcessiveRSTFrames, is NIOHTTP2Errors.ExcessiveContinuationFrames,
             is NIOHTTP2Errors.ExcessiveEmptyDataFrames, is NIOHTTP2Errors.ExcessiveControlFrames,
             is NIOHTTP2Errors.ExcessiveStreamErrors, is NIOHTTP2Errors.ExcessiveNumberOfGlitches,
             is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering, is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock:
            .http2Flood
        case is NIOHTTP2Errors.ContentLengthViolated, is NIOHTTP2Errors.ContentLengthHeaderMalformedValue,
             is NIOHTTP2Errors.ContentLengthHeaderNegative, is NIOHTTP2Errors.ContentLengthHeadersMismatch,
             is NIOHTTP2Errors.DuplicatePseudoHeader, is NIOHTTP2Errors.ForbiddenHeaderField,
             is NIOHTTP2Errors.InvalidHTTP2HeaderFieldName, is NIOHTTP2Errors.InvalidHTTP2HeaderFieldValue,
             is NIOHTTP2Errors.InvalidPseudoHeaderValue, is NIOHTTP2Errors.InvalidPseudoHeaders,
             is NIOHTTP2Errors.MissingPseudoHeader, is NIOHTTP2Errors.PseudoHeaderAfterRegularHeader,
             is NIOHTTP2Errors.TrailersWithoutEndStream, is NIOHTTP2Errors.UnknownPseudoHeader,
             is NIOHTTP2Errors.UnsupportedPseudoHeader:
            .http2StreamError
        default:
            .http2ConnectionError
        }
    }
}
