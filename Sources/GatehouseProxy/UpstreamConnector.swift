import Foundation
import GatehouseIdentity
import GatehouseSnapshot
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// How one upstream connection speaks TLS: the cluster's client context, the SNI, and what the peer's
/// certificate must be. Built per new connection (`LoopContext.transport`); plaintext clusters have none.
struct UpstreamTransport {
    let material: UpstreamTLSMaterial
    /// Sent as SNI; nil for none (an IP is never sent).
    let serverName: String?
    let names: UpstreamPeerPolicy.Names
    /// The pool key's transport part: connections made with other material or another SNI are not
    /// interchangeable.
    let key: Int
}

/// Why a new upstream connection could not be used.
enum UpstreamConnectError: Error {
    /// TCP connect failed or timed out.
    case connect(Error)
    /// The TLS handshake failed; the reason is Envoy's `upstream_transport_failure_reason` form.
    case tls(reason: String)

    var transportFailureReason: String? {
        if case .tls(let reason) = self { return reason }
        return nil
    }
}

/// Every upstream connection — HTTP/1.1 pool, HTTP/2 pool, TCP relay — is made here: TCP, then, for a
/// cluster with DestinationRule `tls`, the TLS handshake with the peer's certificate checked by
/// `PeerCertificateVerifier`. The caller's `configure` adds its protocol's handlers behind TLS; the
/// future succeeds only once the connection can carry bytes (after the handshake).
enum UpstreamConnector {
    static func connect(on eventLoop: EventLoop, to address: SocketAddress, timeout: TimeAmount,
                        transport: UpstreamTransport?, keepalive: TCPKeepalivePolicy? = nil,
                        configure: @escaping @Sendable (Channel) throws -> Void) -> EventLoopFuture<Channel> {
        let bootstrap = socketOptions(ClientBootstrap(group: eventLoop).connectTimeout(timeout), keepalive: keepalive)
        guard let transport else {
            return bootstrap
                .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try configure(channel) } }
                .connect(to: address)
                .flatMapErrorThrowing { throw UpstreamConnectError.connect($0) }
        }
        let verdict = NIOLockedValueBox<PeerVerificationFailure?>(nil)
        let handshake = eventLoop.makePromise(of: Void.self)
        let names = transport.names
        let roots = transport.material.roots
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls: NIOSSLClientHandler
                    if let roots {
                        tls = try NIOSSLClientHandler(
                            context: transport.material.context, serverHostname: transport.serverName,
                            customVerificationCallback: { certificates, promise in
                                let der = certificates.compactMap { try? $0.toDERBytes() }
                                let policy = UpstreamPeerPolicy(roots: roots, names: names)
                                Task {
                                    let failure = await PeerCertificateVerifier.verify(presented: der, policy: policy, now: Date())
                                    verdict.withLockedValue { $0 = failure }
                                    promise.succeed(failure == nil ? .certificateVerified : .failed)
                                }
                            })
                    } else {
                        tls = try NIOSSLClientHandler(context: transport.material.context, serverHostname: transport.serverName)
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(tls)
                    try sync.addHandler(HandshakeWatcher(promise: handshake))
                    try configure(channel)
                }
            }
            .connect(to: address)
            .flatMapError { error in
                handshake.fail(error)
                return eventLoop.makeFailedFuture(UpstreamConnectError.connect(error))
            }
            .flatMap { channel in
                // The handshake is part of connecting (as in Envoy): the same timeout bounds it.
                let deadline = eventLoop.scheduleTask(in: timeout) {
                    handshake.fail(UpstreamConnectError.tls(reason: TLSFailureReason.text(["handshake timed out"])))
                }
                return handshake.futureResult.map { _ in
                    deadline.cancel()
                    return channel
                }.flatMapError { error in
                    deadline.cancel()
                    channel.close(promise: nil)
                    if let error = error as? UpstreamConnectError { return eventLoop.makeFailedFuture(error) }
                    let reason = TLSFailureReason.describe(error, verification: verdict.withLockedValue { $0 })
                    return eventLoop.makeFailedFuture(UpstreamConnectError.tls(reason: reason))
                }
            }
    }
}

extension UpstreamConnector {
    /// TCP_NODELAY always; DestinationRule `tcpKeepalive` as SO_KEEPALIVE and the probe settings it sets.
    static func socketOptions(_ bootstrap: ClientBootstrap, keepalive: TCPKeepalivePolicy?) -> ClientBootstrap {
        var bootstrap = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
        guard let keepalive else { return bootstrap }
        bootstrap = bootstrap.channelOption(.socketOption(.so_keepalive), value: 1)
        for (name, value) in [(TCP_KEEPIDLE, keepalive.timeSeconds), (TCP_KEEPINTVL, keepalive.intervalSeconds),
                              (TCP_KEEPCNT, keepalive.probes)] {
            if let value { bootstrap = bootstrap.channelOption(.tcpOption(.init(rawValue: name)), value: SocketOptionValue(value)) }
        }
        return bootstrap
    }
}

/// Completes the connect promise when the handshake ends, either way. Removes nothing and stays in
/// the pipeline (a no-op afterwards), so it costs nothing per byte.
private final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            promise.succeed(())
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(NIOSSLError.uncleanShutdown)
        context.fireChannelInactive()
    }
}

/// Envoy's `upstream_transport_failure_reason` for a failed handshake:
/// `TLS_error:|CODE:LIBRARY:FUNCTION:REASON[:why]:TLS_error_end`, with the certificate check's own words
/// after CERTIFICATE_VERIFY_FAILED (expired, unknown CA, SAN mismatch).
enum TLSFailureReason {
    static func describe(_ error: Error, verification: PeerVerificationFailure?) -> String {
        var parts: [String] = []
        switch error {
        case NIOSSLError.handshakeFailed(let boring):
            switch boring {
            case .sslError(let stack), .unknownError(let stack), .invalidSNIName(let stack), .failedToSetALPN(let stack):
                parts = stack.map { entry(String(describing: $0)) }
            default:
                parts = ["\(boring)"]
            }
        case NIOSSLError.uncleanShutdown:
            parts = ["connection closed during the handshake"]
        default:
            parts = ["\(error)"]
        }
        if let verification { parts.append("verify cert failed: \(verification)") }
        if parts.isEmpty { parts = ["handshake failed"] }
        return text(parts)
    }

    /// Envoy's wrapping of TLS error entries.
    static func text(_ parts: [String]) -> String {
        "TLS_error:|" + parts.joined(separator: ":") + ":TLS_error_end"
    }

    /// A cluster with `tls` whose client context is missing: it fails like a handshake, never in plaintext.
    static let missingContext = text(["no client TLS context for the cluster"])

    /// Whether a transport failure reason is a TLS one (for `envoy_cluster_ssl_connection_error`).
    static func isTLS(_ reason: String?) -> Bool { reason?.hasPrefix("TLS_error:|") == true }

    /// `Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at f.c:1`
    /// → `268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED`.
    static func entry(_ text: String) -> String {
        var rest = Substring(text)
        if rest.hasPrefix("Error: ") { rest = rest.dropFirst(7) }
        let code = rest.prefix { $0.isNumber }
        guard let start = rest.range(of: "error:") else { return String(rest) }
        var message = rest[start.upperBound...]
        message = message.drop { $0 != ":" }.dropFirst()
        if let at = message.range(of: " at ", options: .backwards) { message = message[..<at.lowerBound] }
        return code.isEmpty ? String(message) : "\(code):\(message)"
    }
}
