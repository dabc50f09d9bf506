import Crypto
import Foundation
import SwiftASN1
import Testing
import X509
@testable import GatehouseIdentity

/// A CA that issues certificates in memory, with validity relative to a fixed instant.
struct TestCA {
    let key = P256.Signing.PrivateKey()
    let name: DistinguishedName
    let certificate: Certificate

    init(_ commonName: String, now: Date) throws {
        name = try DistinguishedName { CommonName(commonName) }
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 86_400, notValidAfter: now + 30 * 86_400, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(key))
    }

    /// A leaf for `names`, valid from `from` to `until` (relative to `now`, in seconds).
    func issue(_ commonName: String, now: Date, dns: [String] = [], uris: [String] = [], ips: [[UInt8]] = [],
               from: TimeInterval = -3600, until: TimeInterval = 86_400) throws -> [UInt8] {
        let leafKey = P256.Signing.PrivateKey()
        var alternatives: [GeneralName] = dns.map { .dnsName($0) } + uris.map { .uniformResourceIdentifier($0) }
        alternatives += ips.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now + from, notValidAfter: now + until, issuer: name,
            subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(alternatives)
            },
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(leaf)
        return serializer.serializedBytes
    }
}

@Suite struct PeerCertificateVerifierTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func verify(_ der: [UInt8], ca: TestCA, names: UpstreamPeerPolicy.Names) async -> PeerVerificationFailure? {
        await PeerCertificateVerifier.verify(presented: [der], policy: UpstreamPeerPolicy(roots: CertificateStore([ca.certificate]), names: names),
                                             now: now)
    }

    @Test func aCertificateForTheHostFromTheTrustedCAPasses() async throws {
        let ca = try TestCA("mesh", now: now)
        let leaf = try ca.issue("api", now: now, dns: ["api.example.com"])
        #expect(await verify(leaf, ca: ca, names: .host("api.example.com")) == nil)
        #expect(await verify(leaf, ca: ca, names: .host("API.example.com.")) == nil)
        #expect(await verify(leaf, ca: ca, names: .any) == nil)
    }

    @Test func anExpiredCertificateSaysSo() async throws {
        let ca = try TestCA("mesh", now: now)
        let leaf = try ca.issue("api", now: now, dns: ["api.example.com"], from: -7200, until: -60)
        guard case .expired? = await verify(leaf, ca: ca, names: .host("api.example.com")) else {
            Issue.record("expected expired")
            return
        }
        let early = try ca.issue("api", now: now, dns: ["api.example.com"], from: 3600, until: 7200)
        guard case .notYetValid? = await verify(early, ca: ca, names: .any) else {
            Issue.record("expected not yet valid")
            return
        }
    }

    @Test func anotherCAIsAnUnknownAuthorityEvenWhenExpiredToo() async throws {
        let ca = try TestCA("mesh", now: now)
        let other = try TestCA("elsewhere", now: now)
        let leaf = try other.issue("api", now: now, dns: ["api.example.com"])
        guard case .unknownAuthority? = await verify(leaf, ca: ca, names: .any) else {
            Issue.record("expected unknown authority")
            return
        }
        let expired = try other.issue("api", now: now, dns: ["api.example.com"], from: -7200, until: -60)
        guard case .unknownAuthority? = await verify(expired, ca: ca, names: .any) else {
            Issue.record("an untrusted certificate is refused for its issuer before its dates")
            return
        }
    }

    @Test func theNamesMustMatch() async throws {
        let ca = try TestCA("mesh", now: now)
        let spiffe = "spiffe://cluster.local/ns/apps/sa/backend"
        let leaf = try ca.issue("backend", now: now, dns: ["*.apps.svc"], uris: [spiffe], ips: [[10, 0, 0, 7]])
        #expect(await verify(leaf, ca: ca, names: .oneOf([spiffe])) == nil)
        #expect(await verify(leaf, ca: ca, names: .oneOf(["spiffe://cluster.local/ns/apps/sa/other", "backend.apps.svc"])) == nil)
        #expect(await verify(leaf, ca: ca, names: .host("10.0.0.7")) == nil)
        #expect(await verify(leaf, ca: ca, names: .oneOf(["10.0.0.7"])) == nil)
        let mismatch = await verify(leaf, ca: ca, names: .oneOf(["spiffe://cluster.local/ns/apps/sa/payments"]))
        #expect(mismatch == .nameMismatch(expected: ["spiffe://cluster.local/ns/apps/sa/payments"],
                                          presented: [spiffe, "*.apps.svc", "10.0.0.7"]))
        // A wildcard covers one label only.
        #expect(await verify(leaf, ca: ca, names: .host("a.b.apps.svc")) != nil)
        #expect(await verify(leaf, ca: ca, names: .host("apps.svc")) != nil)
        #expect(await verify(leaf, ca: ca, names: .host("10.0.0.8")) != nil)
    }

    @Test func nothingOrGarbageIsRefused() async throws {
        let ca = try TestCA("mesh", now: now)
        #expect(await PeerCertificateVerifier.verify(presented: [], policy: .init(roots: CertificateStore([ca.certificate]), names: .any),
                                                     now: now) == .noCertificate)
        #expect(await verify([0x30, 0x03, 0x02, 0x01, 0x01], ca: ca, names: .any) == .unparsable)
    }
}

@Suite struct CertificateNamesTests {
    @Test func ipv6SANsAreReadAndComparedInTheirCanonicalForm() throws {
        let now = Date()
        let ca = try TestCA("mesh", now: now)
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let der = try ca.issue("v6", now: now, ips: [v6])
        let names = CertificateNames(try Certificate(derEncoded: der))
        #expect(names.ipAddresses == ["2001:db8::1"])
        #expect(names.isFor(host: "[2001:0db8:0:0::1]"))
        #expect(names.matchesAny(["2001:db8::1"]))
        #expect(names.principal == "v6")
    }
}
