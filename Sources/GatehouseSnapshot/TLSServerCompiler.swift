import Foundation
import GatehouseConfig
import GatehouseRouting

/// Turns a Gateway server's `tls` block into a `TLSServer`: resolves where the certificate, key and CA
/// bundle live (files named by the server, or a credential directory) and maps Istio's settings.
/// Reading the files is the data plane's job; validation checks them before a snapshot goes live.
enum TLSServerCompiler {
    /// Whether the server terminates TLS here. Istio's `tls.mode` defaults to PASSTHROUGH, which is
    /// not terminated (and which validation refuses until passthrough is served).
    static func terminatesTLS(_ proto: ServerProtocol, _ tls: GatewaySpec.ServerTLSSettings?) -> Bool {
        guard proto == .HTTPS, let mode = tls?.mode else { return false }
        return mode == .SIMPLE || mode == .MUTUAL || mode == .OPTIONAL_MUTUAL
    }

    /// `bound` must terminate TLS (`terminatesTLS`), so it has a `tls` block.
    static func compile(_ bound: SnapshotCompiler.BoundServer, routes: RouteTable,
                        credentialsDirectory: String) -> TLSServer {
        guard let tls = bound.server.tls else { preconditionFailure("a terminating server has a tls block") }
        let path = "spec.servers[\(bound.index)].tls"
        let files = CredentialFiles.resolve(tls, directory: bound.gateway.directory,
                                            credentialsDirectory: credentialsDirectory)
        let clientCertificates: TLSServer.ClientCertificates = switch tls.mode {
        case .MUTUAL: .required
        case .OPTIONAL_MUTUAL: .optional
        default: .none
        }
        return TLSServer(
            id: "\(bound.gateway.label) servers[\(bound.index)]",
            origin: bound.gateway.diagnostic(path, ""),
            hosts: (bound.server.hosts ?? []).map { RouteCompiler.splitServerHost($0).host.lowercased() },
            certificateChainPath: files.certificateChain, privateKeyPath: files.privateKey,
            caCertificatesPaths: clientCertificates == .none ? [] : files.caCertificates,
            clientCertificates: clientCertificates, subjectAltNames: tls.subjectAltNames ?? [],
            minimumVersion: version(tls.minProtocolVersion) ?? .tls1_2, maximumVersion: version(tls.maxProtocolVersion),
            cipherSuites: tls.cipherSuites ?? [], routes: routes)
    }

    static func version(_ value: GatewaySpec.TLSProtocolVersion?) -> TLSServer.ProtocolVersion? {
        switch value {
        case .TLSV1_0: .tls1_0
        case .TLSV1_1: .tls1_1
        case .TLSV1_2: .tls1_2
        case .TLSV1_3: .tls1_3
        case .TLS_AUTO, nil: nil
        }
    }
}

/// Where a server's certificate material is: `serverCertificate`/`privateKey`/`caCertificates` paths
/// (relative to the Gateway's file), or `credentialName` X → `X/tls.crt`, `X/tls.key` and `X/ca.crt`
/// (or `X-cacert/ca.crt`, Istio's separate CA secret) under the Bootstrap's `credentialsDir`.
public struct CredentialFiles: Sendable, Equatable {
    public var certificateChain: String
    public var privateKey: String
    /// Where the client CA bundle may be, in order: the data plane uses the first that exists.
    public var caCertificates: [String]

    public static func resolve(_ tls: GatewaySpec.ServerTLSSettings, directory: String,
                               credentialsDirectory: String) -> CredentialFiles {
        func local(_ path: String) -> String { ConfigPath.resolve(path, against: directory) }
        if let name = tls.credentialName ?? tls.credentialNames?.first {
            let base = ConfigPath.resolve(name, against: credentialsDirectory)
            let ca = tls.caCertificates.map { [local($0)] }
                ?? ["\(base)/ca.crt", ConfigPath.resolve("\(name)-cacert/ca.crt", against: credentialsDirectory)]
            return CredentialFiles(certificateChain: "\(base)/tls.crt", privateKey: "\(base)/tls.key", caCertificates: ca)
        }
        return CredentialFiles(certificateChain: local(tls.serverCertificate ?? ""),
                               privateKey: local(tls.privateKey ?? ""),
                               caCertificates: tls.caCertificates.map { [local($0)] } ?? [])
    }
}
