import GatehouseHTTP1
import NIOCore
import NIOHTTP2

/// Serves HTTP/2 on a connection (after ALPN `h2`, or h2c prior knowledge on a plain port): one
/// `HTTP2StreamHandler` per stream, each an exchange of its own, multiplexed by NIO's HTTP/2 handler,
/// which also enforces the protocol's limits (CONTINUATION floods, rapid resets, header list size).
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

    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, position: ChannelPipeline.Position,
                          runtime: ProxyRuntime, loop: LoopContext, port: Int, tls: DownstreamTLS?) throws {
        let settings = runtime.store.snapshot.settings
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: settings.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: settings.maxRequestHeaderBytes),
            // RFC 8441: clients may open WebSocket streams with an extended CONNECT.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        let stream = NIOHTTP2Handler.StreamConfiguration()
        try pipeline.addHandler(FlushCoalescingHandler(), position: position)
        _ = try pipeline.configureHTTP2Pipeline(mode: .server, connectionConfiguration: connection,
                                                streamConfiguration: stream, position: position) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                try streamChannel.pipeline.syncOperations.addHandler(
                    HTTP2StreamHandler(runtime: runtime, loop: loop, listenerPort: port, tls: tls))
            }
        }
        try pipeline.addHandler(HTTP2ConnectionErrorHandler(), position: position)
        let idle = TimeAmount.nanoseconds(settings.idleTimeoutNanoseconds)
        if idle > .zero {
            // No frame either way for the idle timeout: the connection goes (Envoy counts open streams
            // as activity; a stream waiting that long in silence is cut too).
            try pipeline.addHandler(IdleStateHandler(allTimeout: idle), position: position)
            try pipeline.addHandler(IdleCloser(), position: position)
        }
    }
}


/// Closes an HTTP/2 connection on a connection-level error (bad frames, floods): NIO's handler has sent
/// GOAWAY with the error code by then, and leaves closing to the pipeline.
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Never

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Closes a connection when `IdleStateHandler` reports it idle.
final class IdleCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
