import Foundation
import GatehouseSnapshot
import X509

/// The gateway's mesh identity as its certificate states it: the SPIFFE id and the validity period,
/// for the load check, the expiry metric and the warning before it lapses.
public struct MeshIdentityStatus: Sendable, Equatable {
    public var spiffeID: String
    public var notValidBefore: Date
    public var notValidAfter: Date

    /// Reads the leaf of the identity's chain; throws with words for the Bootstrap's `identity`.
    public static func read(_ identity: MeshIdentity) throws -> MeshIdentityStatus {
        let pem = try PEMFiles.certificates("identity certificate chain", identity.certificateChainPath)
        let leaf = try Certificate(derEncoded: pem[0].toDERBytes())
        let names = CertificateNames(leaf)
        guard let id = names.uris.first(where: { $0.hasPrefix("spiffe://") }) else {
            throw TLSMaterialError(message: "\(identity.certificateChainPath): the certificate has no SPIFFE id (a URI SAN spiffe://\(identity.trustDomain)/ns/NAMESPACE/sa/ACCOUNT)")
        }
        return MeshIdentityStatus(spiffeID: id, notValidBefore: leaf.notValidBefore, notValidAfter: leaf.notValidAfter)
    }

    /// Why the identity cannot be used, or nil: its files must exist and parse, and its SPIFFE id must be
    /// in the configured trust domain. An expired certificate is not refused here (a restart must not
    /// fail while the agent that rotates it catches up); it is warned about and measured.
    public static func problem(_ identity: MeshIdentity) -> String? {
        do {
            let status = try read(identity)
            guard status.trustDomain == identity.trustDomain.lowercased() else {
                return "the identity certificate's SPIFFE id \(status.spiffeID) is not in trust domain \(identity.trustDomain)"
            }
            _ = try PEMFiles.certificates("mesh root certificate", identity.rootCertificatePath)
            _ = try PEMFiles.load("identity private key", identity.privateKeyPath) { try Data(contentsOf: URL(fileURLWithPath: $0)) }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// `spiffe://TRUST_DOMAIN/...` → TRUST_DOMAIN, lowercased.
    public var trustDomain: String {
        let rest = spiffeID.dropFirst("spiffe://".count)
        return String(rest.prefix { $0 != "/" }).lowercased()
    }

    /// What to say about the certificate's lifetime at `now`: nil while more than a quarter of it is left
    /// (Istio's agent rotates at half), then a warning; an error once it has lapsed.
    public func expiryWarning(now: Date) -> String? {
        let remaining = notValidAfter.timeIntervalSince(now)
        let lifetime = notValidAfter.timeIntervalSince(notValidBefore)
        if remaining <= 0 {
            return "mesh identity \(spiffeID) expired at \(notValidAfter); ISTIO_MUTUAL upstreams will refuse the gateway until it is rotated"
        }
        guard remaining < lifetime / 4 else { return nil }
        return "mesh identity \(spiffeID) expires in \(Int(remaining)) s (at \(notValidAfter)) and has not been rotated"
    }
}

extension MeshIdentityStatus {
    /// The identity's validity for `/stats/prometheus`, read from its file at scrape time (so it shows
    /// a rotation as soon as the file changes). Empty without an identity.
    public static func prometheusText(_ identity: MeshIdentity?) -> String {
        guard let identity else { return "" }
        var out = """
        # HELP gatehouse_identity_cert_expiry_timestamp_seconds When the gateway's mesh identity certificate expires (-1: it cannot be read).
        # TYPE gatehouse_identity_cert_expiry_timestamp_seconds gauge

        """
        if let status = try? read(identity) {
            let id = status.spiffeID.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            out += "gatehouse_identity_cert_expiry_timestamp_seconds{spiffe_id=\"\(id)\"} \(Int(status.notValidAfter.timeIntervalSince1970))\n"
        } else {
            out += "gatehouse_identity_cert_expiry_timestamp_seconds{spiffe_id=\"\"} -1\n"
        }
        return out
    }
}
