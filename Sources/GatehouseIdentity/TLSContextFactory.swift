import GatehouseSnapshot
import NIOSSL

/// Why a TLS server's certificate material cannot be used, in words for its config location.
public struct TLSMaterialError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Builds the BoringSSL server context of a `TLSServer` from the files it names.
public enum TLSContextFactory {
    /// ALPN offered to clients, in the server's order of preference.
    public static let applicationProtocols = ["h2", "http/1.1"]

    public static func makeContext(for server: TLSServer) throws -> NIOSSLContext {
        try makeMaterial(for: server).context
    }

    /// The context, and the first URI SAN of the serving certificate.
    static func makeMaterial(for server: TLSServer) throws -> (context: NIOSSLContext, localURI: String?) {
        let chain = try PEMFiles.load("certificate chain", server.certificateChainPath) { try NIOSSLCertificate.fromPEMFile($0) }
        guard !chain.isEmpty else {
            throw TLSMaterialError(message: "\(server.certificateChainPath): no PEM certificate in the file")
        }
        let key = try PEMFiles.load("private key", server.privateKeyPath) { try NIOSSLPrivateKey(file: $0, format: .pem) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = version(server.minimumVersion)
        configuration.maximumTLSVersion = server.maximumVersion.map(version)
        if !server.cipherSuites.isEmpty { configuration.cipherSuites = server.cipherSuites.joined(separator: ":") }
        configuration.applicationProtocols = applicationProtocols
        switch server.clientCertificates {
        case .none:
            configuration.certificateVerification = .none
        case .required, .optional:
            guard let path = server.caCertificatesPaths.first(where: FileStamp.exists) ?? server.caCertificatesPaths.first else {
                throw TLSMaterialError(message: "client certificates are verified but no CA bundle is configured")
            }
            let roots = try PEMFiles.load("CA bundle", path) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !roots.isEmpty else { throw TLSMaterialError(message: "\(path): no PEM certificate in the CA bundle") }
            configuration.trustRoots = .certificates(roots)
            configuration.sendCANameList = true
            configuration.certificateVerification = server.clientCertificates == .required
                ? .noHostnameVerification : .optionalVerification
        }
        do {
            return (try NIOSSLContext(configuration: configuration), ClientCertificateDetails.firstURI(of: chain[0]))
        } catch {
            let hint = server.cipherSuites.isEmpty ? "" : " (check cipherSuites: \(server.cipherSuites.joined(separator: ":")))"
            throw TLSMaterialError(message: "cannot build a TLS context: \(error)\(hint)")
        }
    }

    /// All files a server's context is built from, to watch for rotation.
    public static func files(of server: TLSServer) -> [String] {
        [server.certificateChainPath, server.privateKeyPath] + server.caCertificatesPaths
    }

    static func version(_ version: TLSServer.ProtocolVersion) -> TLSVersion {
        switch version {
        case .tls1_0: .tlsv1
        case .tls1_1: .tlsv11
        case .tls1_2: .tlsv12
        case .tls1_3: .tlsv13
        }
    }
}
