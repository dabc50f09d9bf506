import NIOSSL

/// Who the client certificate says the peer is, as Istio's `source.principal` and Envoy's
/// `%DOWNSTREAM_PEER_URI_SAN%` see it: the first URI SAN (a SPIFFE id such as
/// `spiffe://cluster.local/ns/default/sa/client`), else the first DNS SAN, else the subject's CN.
public enum PeerIdentity {
    public static func principal(of certificate: NIOSSLCertificate) -> String? {
        var dns: String?
        for name in certificate._subjectAlternativeNames() {
            switch name.nameType {
            case .uri: return String(decoding: name.contents, as: UTF8.self)
            case .dnsName: if dns == nil { dns = String(decoding: name.contents, as: UTF8.self) }
            default: break
            }
        }
        if let dns { return dns }
        // NIOSSL keeps its CN accessor internal; its description carries it.
        let description = certificate.description
        guard let start = description.range(of: ";common_name=") else { return nil }
        let rest = description[start.upperBound...]
        return String(rest.prefix { $0 != ";" && $0 != ">" })
    }

    /// Whether the certificate carries one of `allowed` as a SAN (any type), as Istio's
    /// `subjectAltNames` requires. An empty list allows any certificate.
    public static func hasSubjectAltName(_ certificate: NIOSSLCertificate, in allowed: [String]) -> Bool {
        guard !allowed.isEmpty else { return true }
        for name in certificate._subjectAlternativeNames() {
            let text: String
            switch name.nameType {
            case .ipAddress:
                let bytes = Array(name.contents)
                if bytes.count == 4 { text = bytes.map(String.init).joined(separator: ".") } else { continue }
            default:
                text = String(decoding: name.contents, as: UTF8.self)
            }
            if allowed.contains(text) { return true }
        }
        return false
    }
}
