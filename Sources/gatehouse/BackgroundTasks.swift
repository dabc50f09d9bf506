import GatehouseIdentity
import GatehouseProxy
import GatehouseSnapshot
import NIOCore

/// Certificate rotation: every two seconds, rebuild the TLS contexts whose files changed on disk (off
/// the event loops). New handshakes use the new files; open connections keep theirs.
enum CertificateWatch {
    static let interval: Duration = .seconds(2)

    static func service(store: SnapshotStore, contexts: TLSContextStore) -> PeriodicService {
        PeriodicService(description: "certificate watch", interval: interval) {
            for message in contexts.reloadChangedFiles(of: store.snapshot) { Log.info(message) }
        }
    }
}

/// RequestAuthentication `jwksUri` keys: checked every second for what is due (new URIs after a reload,
/// retries with backoff, the 20-minute refresh); fetched off the event loops.
enum JWKSRefresh {
    static func once(store: SnapshotStore, cache: JWKSCache, group: EventLoopGroup) async {
        await once(snapshot: store.snapshot, cache: cache, group: group)
    }

    static func once(snapshot: Snapshot, cache: JWKSCache, group: EventLoopGroup) async {
        let sources = snapshot.authentication.remoteKeySources
        guard !sources.isEmpty else { return }
        let roots = snapshot.settings.jwksRootCertificates
        let messages = await cache.refresh(sources) { uri, timeout in
            try await JWKSFetcher.fetch(uri, timeout: timeout, group: group, extraRoots: roots)
        }
        for message in messages { Log.info(message) }
    }

    static func service(store: SnapshotStore, cache: JWKSCache, group: EventLoopGroup) -> PeriodicService {
        PeriodicService(description: "JWKS refresh", interval: .seconds(1)) {
            await once(store: store, cache: cache, group: group)
        }
    }
}
