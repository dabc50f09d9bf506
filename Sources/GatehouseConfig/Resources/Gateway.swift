/// networking.istio.io Gateway: which ports, protocols and hosts this gateway serves.
public struct GatewaySpec: Decodable, Sendable, Hashable {
    public var selector: [String: String]?
    public var servers: [Server]?

    public struct Server: Decodable, Sendable, Hashable {
        public var port: Port
        public var bind: String?
        public var hosts: [String]?
        public var tls: ServerTLSSettings?
        public var name: String?
        var defaultEndpoint: UninterpretedValue?
    }

    public struct Port: Decodable, Sendable, Hashable {
        public var number: UInt32
        public var `protocol`: String
        public var name: String?
        public var targetPort: UInt32?
    }

    public struct ServerTLSSettings: Decodable, Sendable, Hashable {
        public var httpsRedirect: Bool?
        public var mode: TLSMode?
        public var serverCertificate: String?
        public var privateKey: String?
        public var caCertificates: String?
        public var credentialName: String?
        public var credentialNames: [String]?
        public var subjectAltNames: [String]?
        public var verifyCertificateSpki: [String]?
        public var verifyCertificateHash: [String]?
        public var minProtocolVersion: TLSProtocolVersion?
        public var maxProtocolVersion: TLSProtocolVersion?
        public var cipherSuites: [String]?
        public var caCrl: String?
        var tlsCertificates: UninterpretedValue?
    }

    public enum TLSMode: String, ConfigEnum {
        case PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL
    }

    public enum TLSProtocolVersion: String, ConfigEnum {
        case TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3

        /// Ordering of the explicit versions (TLS_AUTO ranks lowest).
        public var rank: Int {
            switch self {
            case .TLS_AUTO: 0
            case .TLSV1_0: 1
            case .TLSV1_1: 2
            case .TLSV1_2: 3
            case .TLSV1_3: 4
            }
        }
    }
}

/// Server port protocols as Istio spells them (case-insensitive in Istio; we accept any case).
public enum ServerProtocol: String, Sendable, CaseIterable {
    case HTTP, HTTPS, GRPC, GRPC_WEB = "GRPC-WEB", HTTP2, MONGO, TCP, TLS

    public init?(istio text: String) {
        self.init(rawValue: text.uppercased())
    }

    /// Plain-text HTTP family, served by the HTTP listener (h2c comes with HTTP/2 support). HTTPS servers
    /// that terminate TLS share their port only with other HTTPS servers.
    public var isPlainHTTP: Bool { self == .HTTP || self == .HTTP2 || self == .GRPC || self == .GRPC_WEB }
}
