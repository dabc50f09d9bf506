import Foundation
// A fixed validation time keeps the check testable with an injected clock; the validity-free pass
// tells an expired certificate from one of an unknown CA.
@_spi(FixedExpiryValidationTime) @_spi(DisableValidityCheck) import X509

/// What an upstream's certificate must be: signed (through the intermediates it sends) by one of
/// `roots`, valid now, and for the right names. The checks run in swift-certificates, so a failure can
/// say which check failed (BoringSSL's own verification reports only CERTIFICATE_VERIFY_FAILED).
public struct UpstreamPeerPolicy: Sendable {
    public enum Names: Sendable, Equatable {
        /// Any name (ISTIO_MUTUAL when neither the rule nor the service names identities).
        case any
        /// One of these SANs, exactly (Istio's `subjectAltNames`, or the SPIFFE ids of the service).
        case oneOf([String])
        /// A certificate for this host, as a TLS client checks the server it dialled (Istio's automatic
        /// SAN validation against the SNI).
        case host(String)
    }

    public var roots: CertificateStore
    public var names: Names

    public init(roots: CertificateStore, names: Names) {
        self.roots = roots
        self.names = names
    }
}

/// Why an upstream's certificate was refused, in the words OpenSSL and Envoy use, so the access log's
/// `upstream_transport_failure_reason` reads as operators expect.
public enum PeerVerificationFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case noCertificate
    case unparsable
    case expired(subject: String)
    case notYetValid(subject: String)
    /// No chain from the certificate to a trusted root (another CA, or a missing intermediate).
    case unknownAuthority(subject: String)
    case nameMismatch(expected: [String], presented: [String])

    public var description: String {
        switch self {
        case .noCertificate: "peer did not return a certificate"
        case .unparsable: "the peer's certificate cannot be parsed"
        case .expired(let subject): "certificate has expired (\(subject))"
        case .notYetValid(let subject): "certificate is not yet valid (\(subject))"
        case .unknownAuthority(let subject): "unable to get local issuer certificate (\(subject))"
        case .nameMismatch(let expected, let presented):
            "SAN matcher: expected one of [\(expected.joined(separator: ", "))], certificate has [\(presented.joined(separator: ", "))]"
        }
    }
}

public enum PeerCertificateVerifier {
    /// Checks the chain a peer presented (leaf first) at `now`; nil when it passes.
    public static func verify(presented der: [[UInt8]], policy: UpstreamPeerPolicy, now: Date) async -> PeerVerificationFailure? {
        guard !der.isEmpty else { return .noCertificate }
        var chain: [Certificate] = []
        for bytes in der {
            guard let certificate = try? Certificate(derEncoded: bytes) else { return .unparsable }
            chain.append(certificate)
        }
        let leaf = chain[0]
        let intermediates = CertificateStore(chain.dropFirst())
        var verifier = Verifier(rootCertificates: policy.roots) { RFC5280Policy(fixedExpiryValidationTime: now) }
        if case .couldNotValidate = await verifier.validate(leaf: leaf, intermediates: intermediates) {
            return await classify(chain, policy: policy, now: now)
        }
        let names = CertificateNames(leaf)
        switch policy.names {
        case .any:
            return nil
        case .oneOf(let expected):
            return names.matchesAny(expected) ? nil : .nameMismatch(expected: expected, presented: names.all)
        case .host(let host):
            return names.isFor(host: host) ? nil : .nameMismatch(expected: [host], presented: names.all)
        }
    }

    /// Why a chain failed: if it validates once time is left out, a certificate in it is outside its
    /// validity period; otherwise it does not lead to a trusted root.
    private static func classify(_ chain: [Certificate], policy: UpstreamPeerPolicy, now: Date) async -> PeerVerificationFailure {
        var timeless = Verifier(rootCertificates: policy.roots) { RFC5280Policy.withValidityCheckDisabled() }
        let subject = String(describing: chain[0].subject)
        guard case .validCertificate(let path) = await timeless.validate(leaf: chain[0], intermediates: CertificateStore(chain.dropFirst())) else {
            return .unknownAuthority(subject: subject)
        }
        for certificate in path {
            let name = String(describing: certificate.subject)
            if certificate.notValidAfter < now { return .expired(subject: name) }
            if certificate.notValidBefore > now { return .notYetValid(subject: name) }
        }
        return .unknownAuthority(subject: subject)
    }
}

extension CertificateNames {
    /// Every SAN, for a mismatch message.
    var all: [String] { uris + dnsNames + ipAddresses + emails }
}
