import GatehouseConfig
import GatehouseRouting

/// A Gateway server that terminates TLS (protocol HTTPS, mode SIMPLE, MUTUAL or OPTIONAL_MUTUAL):
/// where its certificate comes from, what it asks of clients, and the routes of its own hosts. Istio
/// gives each such server its own filter chain, chosen by SNI, and its own route table.
public struct TLSServer: Sendable {
    public enum ClientCertificates: Sendable, Equatable {
        /// SIMPLE: no client certificate is asked for.
        case none
        /// MUTUAL: a certificate signed by `caCertificates` is required.
        case required
        /// OPTIONAL_MUTUAL: verified when sent, not required.
        case optional
    }

    public enum ProtocolVersion: Int, Sendable, Comparable {
        case tls1_0 = 0, tls1_1, tls1_2, tls1_3
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// `Gateway ns/name servers[i]`: names the server in logs.
    public var id: String
    /// Where the server's `tls` block is, for error messages about its files: a diagnostic to copy
    /// with the message filled in.
    public var origin: Diagnostic
    /// The server's hosts (namespace part removed), as SNI patterns.
    public var hosts: [String]
    public let certificateChainPath: String
    public let privateKeyPath: String
    /// PEM bundle of CAs that sign client certificates (MUTUAL, OPTIONAL_MUTUAL): the first of these
    /// paths that exists.
    public let caCertificatesPaths: [String]
    public let clientCertificates: ClientCertificates
    /// Client certificates must carry one of these SANs (DNS, URI, IP or email), when not empty.
    public let subjectAltNames: [String]
    /// Istio's default minimum is TLS 1.2.
    public let minimumVersion: ProtocolVersion
    public let maximumVersion: ProtocolVersion?
    /// OpenSSL cipher names for TLS ≤ 1.2 (TLS 1.3 suites are not configurable, as in Envoy).
    public let cipherSuites: [String]
    public var routes: RouteTable

    /// Everything that decides the TLS context: two servers with the same key share one. Built once
    /// here, not per handshake (every handshake looks its context up by it).
    public let contextKey: String

    /// Whether a request's `Host` may be served on a connection whose SNI chose this server. A Host
    /// outside the server's hosts gets 421: otherwise SNI `guest.example.com` on a SIMPLE server could
    /// reach the routes of `admin.example.com` on a MUTUAL one.
    public func servesHost(_ authority: String) -> Bool {
        hostIndex.lookup(authority) != nil
    }

    private let hostIndex: HostIndex<Bool>

    public init(id: String, origin: Diagnostic, hosts: [String], certificateChainPath: String,
                privateKeyPath: String, caCertificatesPaths: [String], clientCertificates: ClientCertificates,
                subjectAltNames: [String], minimumVersion: ProtocolVersion, maximumVersion: ProtocolVersion?,
                cipherSuites: [String], routes: RouteTable) {
        self.id = id
        self.origin = origin
        self.hosts = hosts
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.caCertificatesPaths = caCertificatesPaths
        self.clientCertificates = clientCertificates
        self.subjectAltNames = subjectAltNames
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.cipherSuites = cipherSuites
        self.routes = routes
        hostIndex = HostIndex(hosts.map { ($0, true) })
        contextKey = [certificateChainPath, privateKeyPath, caCertificatesPaths.joined(separator: ","), "\(clientCertificates)",
                      subjectAltNames.joined(separator: ","), "\(minimumVersion)", maximumVersion.map { "\($0)" } ?? "",
                      cipherSuites.joined(separator: ":")].joined(separator: "|")
    }
}

/// The TLS servers of one port and how a ClientHello's SNI picks one.
public struct TLSServers: Sendable {
    public var servers: [TLSServer]
    private let bySNI: HostIndex<Int>

    public init(_ servers: [TLSServer]) {
        self.servers = servers
        var index = HostIndex<Int>()
        for (position, server) in servers.enumerated() {
            for host in server.hosts { index.insert(host, position) }
        }
        bySNI = index
    }

    /// The server for a ClientHello: by SNI (exact, longest wildcard, `*`); a client that sends no SNI
    /// gets the `*` server if there is one, else the first server of the port. Nil: no server takes
    /// this SNI, and the handshake must fail (as Envoy's does when no filter chain matches).
    public func server(forSNI sni: String?) -> TLSServer? {
        guard let sni, !sni.isEmpty else { return bySNI.any.map { servers[$0] } ?? servers.first }
        return bySNI.lookup(sni).map { servers[$0] }
    }
}
