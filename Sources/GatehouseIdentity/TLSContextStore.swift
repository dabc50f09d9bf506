import GatehouseConfig
import GatehouseSnapshot
import NIOSSL
import Synchronization

/// The TLS contexts of the live snapshot's servers, shared by every event loop. Contexts are built off
/// the loops — when a snapshot is prepared, and when a certificate file changes on disk — and swapped
/// in under a lock: a handshake that starts after a rotation uses the new certificate, and connections
/// already open keep the one they negotiated.
///
/// A reload prepares its contexts beside the live ones (`stage`), adds them only once nothing else can
/// reject it (`install`), and drops the contexts of servers it removed only after its snapshot is live
/// (`prune`): a rejected reload changes nothing a handshake can see.
public final class TLSContextStore: Sendable {
    struct Entry: Sendable {
        var context: NIOSSLContext
        /// The serving certificate's first URI SAN (`By` in x-forwarded-client-cert).
        var localURI: String?
        var stamps: [String: FileStamp?]
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// The client contexts of the clusters' DestinationRule `tls`, staged and swapped with these.
    private let upstream = UpstreamTLSContexts()

    public init() {}

    /// Contexts built for a snapshot that is not live yet.
    public struct Staged: Sendable {
        fileprivate var entries: [String: Entry]
        /// The context keys the snapshot uses.
        fileprivate var keys: Set<String>
        fileprivate var upstream = UpstreamTLSContexts.Staged()
    }

    /// Builds a context for every TLS server of `snapshot` that has none yet (or whose files changed),
    /// changing nothing that serves. Returns one diagnostic per server whose material cannot be used,
    /// located at its `tls` block; the snapshot must not go live if there are any.
    public func stage(_ snapshot: Snapshot) -> (Staged, [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        var staged = Staged(entries: [:], keys: [])
        let current = entries.withLock { $0 }
        for listener in snapshot.listeners {
            for server in listener.tls?.servers ?? [] {
                let key = server.contextKey
                guard staged.keys.insert(key).inserted else { continue }
                let stamps = Self.stamps(of: server)
                if let entry = current[key], entry.stamps == stamps { continue }
                do {
                    staged.entries[key] = try Self.entry(for: server, stamps: stamps)
                } catch {
                    var diagnostic = server.origin
                    diagnostic.message = "\(error)"
                    diagnostics.append(diagnostic)
                }
            }
        }
        let (upstreamStaged, upstreamProblems) = upstream.stage(snapshot)
        staged.upstream = upstreamStaged
        return (staged, diagnostics + upstreamProblems)
    }

    /// Adds the staged contexts. Every live context stays: the snapshot still serving may use it until
    /// the swap.
    public func install(_ staged: Staged) {
        entries.withLock { entries in
            for (key, entry) in staged.entries { entries[key] = entry }
        }
        upstream.install(staged.upstream)
    }

    /// Drops the contexts no server of `staged`'s snapshot uses, once that snapshot is live.
    public func prune(keeping staged: Staged) {
        entries.withLock { entries in entries = entries.filter { staged.keys.contains($0.key) } }
        upstream.prune(keeping: staged.upstream)
    }

    /// What a new connection to an upstream with `tls` is made with (nil only if the snapshot naming it
    /// was never prepared).
    public func upstreamMaterial(for tls: UpstreamTLS) -> UpstreamTLSMaterial? {
        upstream.material(for: tls)
    }

    /// Changes whenever any upstream material is installed, pruned or re-read: while it stays the same,
    /// what `upstreamMaterial` returned before still holds (one atomic load instead of a lock).
    public var upstreamVersion: Int { upstream.version }

    /// stage, install and prune at once: for the first snapshot, and for `validate`. Nothing is
    /// installed when there are diagnostics.
    public func prepare(_ snapshot: Snapshot) -> [Diagnostic] {
        let (staged, diagnostics) = stage(snapshot)
        guard diagnostics.isEmpty else { return diagnostics }
        install(staged)
        prune(keeping: staged)
        return []
    }

    /// The context for a server of the live snapshot.
    public func context(for server: TLSServer) -> NIOSSLContext? {
        entries.withLock { $0[server.contextKey]?.context }
    }

    /// The context and the serving certificate's URI SAN, for a handshake.
    public func material(for server: TLSServer) -> (context: NIOSSLContext, localURI: String?)? {
        entries.withLock { $0[server.contextKey].map { ($0.context, $0.localURI) } }
    }

    private static func entry(for server: TLSServer, stamps: [String: FileStamp?]) throws -> Entry {
        let material = try TLSContextFactory.makeMaterial(for: server)
        return Entry(context: material.context, localURI: material.localURI, stamps: stamps)
    }

    /// Rebuilds the contexts whose files changed on disk. A rotation caught half-written (a key that
    /// does not parse yet) keeps the old context and is retried at the next call. Returns what it did,
    /// for the log.
    public func reloadChangedFiles(of snapshot: Snapshot) -> [String] {
        var messages: [String] = []
        for listener in snapshot.listeners {
            for server in listener.tls?.servers ?? [] {
                let key = server.contextKey
                let stamps = Self.stamps(of: server)
                guard let entry = entries.withLock({ $0[key] }), entry.stamps != stamps else { continue }
                do {
                    let entry = try Self.entry(for: server, stamps: stamps)
                    entries.withLock { $0[key] = entry }
                    messages.append("\(server.id): certificate files changed; new handshakes use them")
                } catch {
                    messages.append("\(server.id): certificate files changed but cannot be used yet (\(error)); keeping the previous ones")
                }
            }
        }
        return messages + upstream.reloadChangedFiles(of: snapshot)
    }

    static func stamps(of server: TLSServer) -> [String: FileStamp?] {
        FileStamp.stamps(of: TLSContextFactory.files(of: server))
    }
}
