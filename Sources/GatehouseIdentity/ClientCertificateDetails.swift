import Crypto
import NIOSSL
import X509

/// The `x-forwarded-client-cert` element for a verified client certificate, as an Istio gateway writes it
/// (Envoy's `set_current_client_cert_details` with subject, URI and DNS):
/// `By=<our URI SAN>;Hash=<SHA-256 of the DER, hex>;Subject="<RFC 2253 DN>";URI=<SAN>;DNS=<SAN>`.
/// `By` appears only when the serving certificate has a URI SAN; `URI=` is always present (empty when
/// the client certificate has none); there is one `DNS=` per DNS SAN.
public enum ClientCertificateDetails {
    public static func element(peer certificate: NIOSSLCertificate, localURI: String?) -> String? {
        guard let der = try? certificate.toDERBytes() else { return nil }
        var parts: [String] = []
        if let localURI { parts.append("By=" + quotedIfNeeded(localURI)) }
        parts.append("Hash=" + SHA256.hash(data: der).map { hex($0) }.joined())
        let subject = (try? Certificate(derEncoded: der)).map { String(describing: $0.subject) } ?? ""
        // As Envoy writes it: the DN inside quotes, as is (an RFC 2253 DN escapes its own specials),
        // unless a bare quote would end the value early.
        parts.append("Subject=" + (subject.contains("\"") ? quoted(subject) : "\"\(subject)\""))
        var uris: [String] = []
        var dnsNames: [String] = []
        for name in certificate._subjectAlternativeNames() {
            switch name.nameType {
            case .uri: uris.append(String(decoding: name.contents, as: UTF8.self))
            case .dnsName: dnsNames.append(String(decoding: name.contents, as: UTF8.self))
            default: break
            }
        }
        if uris.isEmpty { parts.append("URI=") }
        for uri in uris { parts.append("URI=" + quotedIfNeeded(uri)) }
        for dns in dnsNames { parts.append("DNS=" + quotedIfNeeded(dns)) }
        return parts.joined(separator: ";")
    }

    /// The first URI SAN of a certificate (the serving certificate's, for `By`).
    public static func firstURI(of certificate: NIOSSLCertificate) -> String? {
        for name in certificate._subjectAlternativeNames() where name.nameType == .uri {
            return String(decoding: name.contents, as: UTF8.self)
        }
        return nil
    }

    /// XFCC separates elements with `,` and pairs with `;`: a value holding either (or `=` or a quote)
    /// is quoted, so a certificate cannot forge a second pair or element.
    static func quotedIfNeeded(_ value: String) -> String {
        value.contains(where: { $0 == "," || $0 == ";" || $0 == "=" || $0 == "\"" || $0 == "\\" }) ? quoted(value) : value
    }

    static func quoted(_ value: String) -> String {
        var out = "\""
        for character in value {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        out.append("\"")
        return out
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
