import GatehouseTelemetry
import NIOCore
import NIOTLS

/// Waits for a downstream TLS handshake to finish, records what it established, checks the client
/// certificate's SANs, and hands the connection to HTTP/2 (ALPN `h2`) or HTTP/1.1; then removes itself.
final class TLSSessionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var tls: DownstreamTLS
    private let metrics: GatewayMetrics
    private let start: (ChannelPipeline.SynchronousOperations, DownstreamTLS, _ http2: Bool) throws -> Void

    init(tls: DownstreamTLS, metrics: GatewayMetrics,
         start: @escaping (ChannelPipeline.SynchronousOperations, DownstreamTLS, _ http2: Bool) throws -> Void) {
        self.tls = tls
        self.metrics = metrics
        self.start = start
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tlsEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let pipeline = context.pipeline.syncOperations
        guard tls.handshakeCompleted(pipeline) else {
            // A client certificate without any of the server's subjectAltNames: refused before any
            // request, as Envoy refuses it in the handshake.
            metrics.record(.tlsHandshakeError)
            context.close(promise: nil)
            return
        }
        do {
            try start(pipeline, tls, negotiated == "h2")
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tls.handshakeTimeout.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A failed handshake (untrusted or expired client certificate, no common version or cipher).
        metrics.record(.tlsHandshakeError)
        context.close(promise: nil)
    }
}
