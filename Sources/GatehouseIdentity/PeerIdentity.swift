import NIOSSL
import X509

/// Who the client certificate says the peer is, as Istio's `source.principal` and Envoy's
/// `%DOWNSTREAM_PEER_URI_SAN%` see it: the first URI SAN (a SPIFFE id such as
/// `spiffe://cluster.local/ns/default/sa/client`), else the first DNS SAN, else the subject's CN.
public enum PeerIdentity {
    public static func principal(of certificate: NIOSSLCertificate) -> String? {
        names(of: certificate)?.principal
    }

    /// Whether the certificate carries one of `allowed` as a SAN (URI, DNS, IPv4 or IPv6 address,
    /// email), as Istio's `subjectAltNames` requires. An empty list allows any certificate.
    public static func hasSubjectAltName(_ certificate: NIOSSLCertificate, in allowed: [String]) -> Bool {
        guard !allowed.isEmpty else { return true }
        return names(of: certificate)?.matchesAny(allowed) ?? false
    }

    static func names(of certificate: NIOSSLCertificate) -> CertificateNames? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        return CertificateNames(parsed)
    }
}
