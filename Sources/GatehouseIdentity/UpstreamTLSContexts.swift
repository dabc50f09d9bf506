import Foundation
import GatehouseConfig
import GatehouseSnapshot
import NIOSSL
import Synchronization
import X509

/// What a new upstream TLS connection is made with: the BoringSSL client context (client certificate,
/// ALPN) and the policy its peer's certificate is checked against (nil: `insecureSkipVerify`).
public struct UpstreamTLSMaterial: Sendable {
    public var context: NIOSSLContext
    public var roots: CertificateStore?
    /// Bumped each time the files are re-read: part of the pool key, so a rotated client certificate
    /// is used by new connections without touching open ones.
    public var generation: Int
}

/// The client contexts of the clusters with DestinationRule `tls`, built off the event loops when a
/// snapshot is prepared and when their files change, like the server contexts (`TLSContextStore`, which
/// stages, installs and prunes these with its own).
final class UpstreamTLSContexts: Sendable {
    struct Entry: Sendable {
        var material: UpstreamTLSMaterial
        var stamps: [String: FileStamp?]
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let generations = Atomic<Int>(0)
    /// Bumped after every change to `entries`: a loop's cached transports are good while it holds.
    private let changes = Atomic<Int>(0)

    /// How many times the material changed; the same value means whatever was read before still holds.
    var version: Int { changes.load(ordering: .acquiring) }

    private func changed() { changes.wrappingAdd(1, ordering: .releasing) }

    struct Staged: Sendable {
        var entries: [String: Entry] = [:]
        var keys: Set<String> = []
    }

    /// Every TLS setting of `snapshot`'s clusters, in its HTTP and its TCP form (which differ in ALPN).
    static func settings(of snapshot: Snapshot) -> [UpstreamTLS] {
        snapshot.clusterList.compactMap(\.tls).flatMap { [$0, $0.forStreams] }
    }

    func stage(_ snapshot: Snapshot) -> (Staged, [Diagnostic]) {
        var staged = Staged()
        var diagnostics: [Diagnostic] = []
        let current = entries.withLock { $0 }
        for tls in Self.settings(of: snapshot) {
            let key = tls.contextKey
            guard staged.keys.insert(key).inserted else { continue }
            let stamps = Self.stamps(of: tls)
            if let entry = current[key], entry.stamps == stamps { continue }
            do {
                staged.entries[key] = Entry(material: try makeMaterial(tls), stamps: stamps)
            } catch {
                var diagnostic = tls.origin
                diagnostic.message = "\(error)"
                if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
            }
        }
        if let identity = snapshot.settings.meshIdentity, let problem = MeshIdentityStatus.problem(identity) {
            var diagnostic = identity.origin
            diagnostic.message = problem
            diagnostics.append(diagnostic)
        }
        return (staged, diagnostics)
    }

    func install(_ staged: Staged) {
        entries.withLock { entries in for (key, entry) in staged.entries { entries[key] = entry } }
        changed()
    }

    func prune(keeping staged: Staged) {
        entries.withLock { entries in entries = entries.filter { staged.keys.contains($0.key) } }
        changed()
    }

    func material(for tls: UpstreamTLS) -> UpstreamTLSMaterial? {
        entries.withLock { $0[tls.contextKey]?.material }
    }

    /// Re-reads the files that changed; a half-written rotation keeps the previous material.
    func reloadChangedFiles(of snapshot: Snapshot) -> [String] {
        var messages: [String] = []
        var seen: Set<String> = []
        for tls in Self.settings(of: snapshot) where seen.insert(tls.contextKey).inserted {
            let stamps = Self.stamps(of: tls)
            guard let entry = entries.withLock({ $0[tls.contextKey] }), entry.stamps != stamps else { continue }
            let what = tls.mode == .istioMutual ? "mesh identity" : "upstream TLS files of \(tls.origin.resource)"
            do {
                let material = try makeMaterial(tls)
                entries.withLock { $0[tls.contextKey] = Entry(material: material, stamps: stamps) }
                changed()
                messages.append("\(what) changed on disk; new upstream connections use it")
            } catch {
                messages.append("\(what) changed on disk but cannot be used yet (\(error)); keeping the previous one")
            }
        }
        return Array(Set(messages)).sorted()
    }

    private func makeMaterial(_ tls: UpstreamTLS) throws -> UpstreamTLSMaterial {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = tls.applicationProtocols
        if let chainPath = tls.certificateChainPath, let keyPath = tls.privateKeyPath {
            let chain = try PEMFiles.certificates("client certificate", chainPath)
            let key = try PEMFiles.load("private key", keyPath) { try NIOSSLPrivateKey(file: $0, format: .pem) }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        var roots: CertificateStore?
        if tls.insecureSkipVerify {
            configuration.certificateVerification = .none
        } else {
            // The peer is checked by `PeerCertificateVerifier` in the handshake's custom verification
            // callback, against these roots; BoringSSL's own check is replaced, not added to.
            configuration.certificateVerification = .noHostnameVerification
            if let path = tls.caCertificatesPaths.first(where: FileStamp.exists) {
                let pem = try PEMFiles.certificates("CA bundle", path)
                roots = CertificateStore(try pem.map { try Certificate(derEncoded: $0.toDERBytes()) })
            } else if let path = tls.caCertificatesPaths.first {
                throw TLSMaterialError(message: "CA bundle \(path): no such file")
            } else {
                roots = .systemTrustRoots
            }
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            return UpstreamTLSMaterial(context: context, roots: roots,
                                       generation: generations.wrappingAdd(1, ordering: .relaxed).newValue)
        } catch {
            throw TLSMaterialError(message: "cannot build an upstream TLS context: \(error)")
        }
    }

    static func stamps(of tls: UpstreamTLS) -> [String: FileStamp?] {
        FileStamp.stamps(of: tls.files)
    }
}

/// Reading PEM files with errors that name the file and what it was meant to hold.
enum PEMFiles {
    static func load<T>(_ what: String, _ path: String, _ body: (String) throws -> T) throws -> T {
        guard !path.isEmpty else { throw TLSMaterialError(message: "no \(what) file is configured") }
        guard FileStamp.exists(path) else { throw TLSMaterialError(message: "\(what) \(path): no such file") }
        do {
            return try body(path)
        } catch {
            throw TLSMaterialError(message: "\(what) \(path) is not valid PEM: \(error)")
        }
    }

    static func certificates(_ what: String, _ path: String) throws -> [NIOSSLCertificate] {
        let certificates = try load(what, path) { try NIOSSLCertificate.fromPEMFile($0) }
        guard !certificates.isEmpty else { throw TLSMaterialError(message: "\(path): no PEM certificate in the file") }
        return certificates
    }
}
