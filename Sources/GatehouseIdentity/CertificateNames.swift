import Foundation
import X509

/// The names a certificate is for, read with swift-certificates: its subject alternative names by type
/// (IPv4 and IPv6 addresses in their text forms) and its subject's common name.
public struct CertificateNames: Sendable, Equatable {
    public var uris: [String] = []
    public var dnsNames: [String] = []
    public var ipAddresses: [String] = []
    public var emails: [String] = []
    public var commonName: String?

    public init(_ certificate: Certificate) {
        for name in (try? certificate.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames() {
            switch name {
            case .uniformResourceIdentifier(let uri): uris.append(uri)
            case .dnsName(let dns): dnsNames.append(dns)
            case .rfc822Name(let email): emails.append(email)
            case .ipAddress(let octets): if let text = Self.ipText(Array(octets.bytes)) { ipAddresses.append(text) }
            default: break
            }
        }
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                commonName = String(describing: attribute.value)
            }
        }
    }

    /// Who the certificate says its holder is, as Istio's `source.principal` reads a peer: the first URI
    /// SAN (a SPIFFE id), else the first DNS SAN, else the common name.
    public var principal: String? { uris.first ?? dnsNames.first ?? commonName }

    /// Whether one of `expected` is among the SANs, compared exactly as Istio's `subjectAltNames` are,
    /// except that a DNS SAN `*.example.com` covers one label (Envoy's DNS SAN matching).
    public func matchesAny(_ expected: [String]) -> Bool {
        for name in expected {
            if uris.contains(name) || ipAddresses.contains(name) || emails.contains(name) { return true }
            if dnsNames.contains(where: { Self.dnsName($0, covers: name) }) { return true }
        }
        return false
    }

    /// Whether the certificate is for host `host` (a DNS name or an IP address), as a TLS client checks
    /// the server it dialled: an IP against IP SANs, a name against DNS SANs with one-label wildcards.
    public func isFor(host: String) -> Bool {
        if let ip = Self.normalizedIP(host) { return ipAddresses.contains(ip) }
        return dnsNames.contains { Self.dnsName($0, covers: host) }
    }

    /// RFC 6125: `*.example.com` covers `api.example.com`, not `example.com` or `a.b.example.com`; case
    /// and a trailing dot do not matter.
    static func dnsName(_ pattern: String, covers host: String) -> Bool {
        let pattern = pattern.lowercased().trimmingSuffixDot()
        let host = host.lowercased().trimmingSuffixDot()
        if pattern == host { return true }
        guard pattern.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
        let label = host[..<dot]
        return !label.isEmpty && host[host.index(after: dot)...] == pattern.dropFirst(2)
    }

    static func ipText(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4: return bytes.map(String.init).joined(separator: ".")
        case 16:
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        default: return nil
        }
    }

    /// An IP address in the text form `ipText` gives, or nil for a name.
    static func normalizedIP(_ text: String) -> String? {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        var v4 = in_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 { return withUnsafeBytes(of: &v4) { ipText(Array($0)) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, bare, &v6) == 1 { return withUnsafeBytes(of: &v6) { ipText(Array($0)) } }
        return nil
    }
}

extension String {
    fileprivate func trimmingSuffixDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}
