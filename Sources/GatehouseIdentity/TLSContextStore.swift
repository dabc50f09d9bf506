import GatehouseConfig
import GatehouseSnapshot
import NIOSSL
import Synchronization

/// The TLS contexts of the live snapshot's servers, shared by every event loop. Contexts are built off
/// the loops — when a snapshot is prepared, and when a certificate file changes on disk — and swapped
/// in under a lock: a handshake that starts after a rotation uses the new certificate, and connections
/// already open keep the one they negotiated.
public final class TLSContextStore: Sendable {
    struct Entry: Sendable {
        var context: NIOSSLContext
        var stamps: [String: FileStamp?]
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// Builds a context for every TLS server of `snapshot` that has none yet (or whose files changed),
    /// and drops contexts no server uses any more. Returns one diagnostic per server whose material
    /// cannot be used, located at its `tls` block; the snapshot must not go live if there are any.
    public func prepare(_ snapshot: Snapshot) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        var next: [String: Entry] = [:]
        let current = entries.withLock { $0 }
        for listener in snapshot.listeners {
            for server in listener.tls?.servers ?? [] {
                let key = server.contextKey
                if next[key] != nil { continue }
                let stamps = Self.stamps(of: server)
                if let entry = current[key], entry.stamps == stamps {
                    next[key] = entry
                    continue
                }
                do {
                    next[key] = Entry(context: try TLSContextFactory.makeContext(for: server), stamps: stamps)
                } catch {
                    var diagnostic = server.origin
                    diagnostic.message = "\(error)"
                    diagnostics.append(diagnostic)
                }
            }
        }
        if diagnostics.isEmpty { entries.withLock { $0 = next } }
        return diagnostics
    }

    /// The context for a server of the live snapshot.
    public func context(for server: TLSServer) -> NIOSSLContext? {
        entries.withLock { $0[server.contextKey]?.context }
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
                    let context = try TLSContextFactory.makeContext(for: server)
                    entries.withLock { $0[key] = Entry(context: context, stamps: stamps) }
                    messages.append("\(server.id): certificate files changed; new handshakes use them")
                } catch {
                    messages.append("\(server.id): certificate files changed but cannot be used yet (\(error)); keeping the previous ones")
                }
            }
        }
        return messages
    }

    static func stamps(of server: TLSServer) -> [String: FileStamp?] {
        var stamps: [String: FileStamp?] = [:]
        for path in TLSContextFactory.files(of: server) { stamps[path] = FileStamp(path: path) }
        return stamps
    }
}
