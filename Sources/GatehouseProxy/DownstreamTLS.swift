import GatehouseIdentity
import NIOCore
import NIOSSL
import NIOTLS

/// What a downstream connection learned from its TLS handshake, for routing, policy and the log.
struct DownstreamTLS {
    /// The SNI the client sent (lowercase), nil without one.
    let serverName: String?
    /// The server's `subjectAltNames`: a client certificate must carry one of them.
    let subjectAltNames: [String]
    let handshakeTimeout: Scheduled<Void>
    private(set) var established = false
    /// `TLSv1.3` and so on, as Envoy's `%DOWNSTREAM_TLS_VERSION%` writes it.
    private(set) var version: String?
    /// The client certificate's principal (see `PeerIdentity`), nil without one.
    private(set) var peerPrincipal: String?
    /// The serving certificate's URI SAN (`By=` in x-forwarded-client-cert).
    let localURI: String?
    /// This connection's x-forwarded-client-cert element, when the client presented a certificate
    /// that verified (Envoy's "mTLS connection"); nil otherwise.
    private(set) var clientCertDetails: String?

    init(serverName: String?, subjectAltNames: [String], localURI: String? = nil, handshakeTimeout: Scheduled<Void>) {
        self.serverName = serverName
        self.subjectAltNames = subjectAltNames
        self.localURI = localURI
        self.handshakeTimeout = handshakeTimeout
    }

    /// Records the handshake's outcome. Returns false when the client certificate lacks every SAN the
    /// server requires, and the connection must be closed before any request is read.
    mutating func handshakeCompleted(_ pipeline: ChannelPipeline.SynchronousOperations) -> Bool {
        handshakeTimeout.cancel()
        established = true
        guard let handler = try? pipeline.handler(type: NIOSSLServerHandler.self) else { return false }
        version = handler.tlsVersion.map(Self.describe)
        let certificate = handler.peerCertificate
        peerPrincipal = certificate.flatMap(PeerIdentity.principal)
        // NIOSSL reports a peer certificate only once it verified (an unverifiable one fails the handshake).
        clientCertDetails = certificate.flatMap { ClientCertificateDetails.element(peer: $0, localURI: localURI) }
        guard !subjectAltNames.isEmpty, let certificate else { return true }
        return PeerIdentity.hasSubjectAltName(certificate, in: subjectAltNames)
    }

    static func describe(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}

extension DownstreamTLS {
    /// A TLS session as `explain` describes it: no handshake, just what policy and routing read.
    init(described serverName: String?, peerPrincipal: String?, on loop: EventLoop) {
        let timer = loop.scheduleTask(in: .hours(1)) {}
        timer.cancel()
        self.init(serverName: serverName, subjectAltNames: [], handshakeTimeout: timer)
        self.peerPrincipal = peerPrincipal
        established = true
    }
}
