import GatehouseConfig

/// How a cluster's connections speak TLS, compiled from its DestinationRule `tls` (SIMPLE, MUTUAL or
/// ISTIO_MUTUAL; DISABLE compiles to no `UpstreamTLS` at all). The certificate files are read, and
/// re-read when they rotate, by `GatehouseIdentity`; this is what they are and how the peer is checked.
public struct UpstreamTLS: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable {
        case simple = "SIMPLE", mutual = "MUTUAL", istioMutual = "ISTIO_MUTUAL"
    }

    public var mode: Mode
    /// The client certificate chain and key presented (MUTUAL; ISTIO_MUTUAL: the mesh identity's).
    public var certificateChainPath: String?
    public var privateKeyPath: String?
    /// Where the CA bundle may be, in order (a `credentialName` has two places); the first that exists is
    /// used. Empty: the system's trust store.
    public var caCertificatesPaths: [String]
    /// The SNI sent. nil: the request's host (Istio's automatic SNI); a TCP route then sends none.
    public var sni: String?
    /// The SANs the peer's certificate must carry one of (exact; a wildcard DNS SAN covers one label).
    /// Empty: SIMPLE and MUTUAL check the certificate is for the SNI host; ISTIO_MUTUAL accepts any
    /// identity the mesh root signed.
    public var subjectAltNames: [String]
    /// No check of the peer's certificate at all (`insecureSkipVerify`).
    public var insecureSkipVerify: Bool
    /// ALPN offered, in order: the destination protocol, after Istio's `istio-*` markers for
    /// ISTIO_MUTUAL (a sidecar's inbound listener picks its mTLS filter chain by them).
    public private(set) var applicationProtocols: [String]
    /// What the client context is built from: clusters that agree on it share one context. Looked up
    /// for each request of the cluster, so built once here rather than per lookup.
    public private(set) var contextKey = ""
    /// `forStreams`'s ALPN and key, made with the rest.
    private var streamProtocols: [String] = []
    private var streamContextKey = ""
    /// Where the `tls` block is (or the Bootstrap `identity`, for ISTIO_MUTUAL's files), for errors.
    public var origin: Diagnostic

    public init(mode: Mode, certificateChainPath: String?, privateKeyPath: String?, caCertificatesPaths: [String],
                sni: String?, subjectAltNames: [String], insecureSkipVerify: Bool, applicationProtocols: [String],
                origin: Diagnostic) {
        self.mode = mode
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.caCertificatesPaths = caCertificatesPaths
        self.sni = sni
        self.subjectAltNames = subjectAltNames
        self.insecureSkipVerify = insecureSkipVerify
        self.applicationProtocols = applicationProtocols
        self.origin = origin
        streamProtocols = mode == .istioMutual ? ["istio-peer-exchange", "istio"] : []
        contextKey = key(applicationProtocols)
        streamContextKey = key(streamProtocols)
    }

    private func key(_ protocols: [String]) -> String {
        [mode.rawValue, certificateChainPath ?? "", privateKeyPath ?? "", caCertificatesPaths.joined(separator: ","),
         insecureSkipVerify ? "skip" : "verify", protocols.joined(separator: ",")].joined(separator: "|")
    }

    /// The same setting for a TCP route: no HTTP protocol to offer in ALPN, only Istio's markers for
    /// ISTIO_MUTUAL (what a sidecar expects of a mesh TCP connection).
    public var forStreams: UpstreamTLS {
        var copy = self
        copy.applicationProtocols = streamProtocols
        copy.contextKey = streamContextKey
        return copy
    }

    /// The files the context is built from, to watch for rotation.
    public var files: [String] {
        [certificateChainPath, privateKeyPath].compactMap { $0 } + caCertificatesPaths
    }
}

/// The Bootstrap `identity`, resolved: the gateway's SPIFFE certificate, its key, the mesh root and the
/// trust domain the certificate must belong to.
public struct MeshIdentity: Sendable, Hashable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    public var rootCertificatePath: String
    public var trustDomain: String
    public var origin: Diagnostic

    public init(certificateChainPath: String, privateKeyPath: String, rootCertificatePath: String, trustDomain: String,
                origin: Diagnostic) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.rootCertificatePath = rootCertificatePath
        self.trustDomain = trustDomain
        self.origin = origin
    }
}
