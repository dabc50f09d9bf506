import GatehouseIdentity
import GatehouseProxy
import GatehouseRateLimit
import GatehouseStateStore
import GatehouseTelemetry
import ServiceLifecycle
import GatehouseSnapshot
import NIOCore
import Synchronization
import Foundation

/// Certificate rotation: every two seconds, rebuild the TLS contexts whose files changed on disk (off
/// the event loops). New handshakes use the new files; open connections keep theirs.
enum CertificateWatch {
    static let interval: Duration = .seconds(2)

    static func service(store: SnapshotStore, contexts: TLSContextStore) -> PeriodicService {
        let ticks = Mutex(0)
        return PeriodicService(description: "certificate watch", interval: interval) {
            for message in contexts.reloadChangedFiles(of: store.snapshot) { Log.info(message) }
            // The mesh identity's lifetime, once a minute: a warning while it nears its end unrotated.
            let tick = ticks.withLock { $0 += 1; return $0 }
            if tick % 30 == 1, let identity = store.snapshot.settings.meshIdentity {
                switch Result(catching: { try MeshIdentityStatus.read(identity) }) {
                case .success(let status):
                    if let warning = status.expiryWarning(now: Date()) { Log.warning(warning) }
                case .failure(let error):
                    Log.warning("mesh identity cannot be read: \(error)")
                }
            }
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

/// RateLimitPolicy counters: every ten seconds, forget the keys back to their full allowance (a full
/// bucket, a quota period over), so keys made of client input do not pile up in memory; with the sqlite
/// store, delete the saved rows of quota periods that are over.
enum RateLimitSweep {
    static func service(runtime: ProxyRuntime, persistence: QuotaPersistence?) -> PeriodicService {
        PeriodicService(description: "rate-limit sweep", interval: .seconds(10)) {
            runtime.sweepRateLimitCounters()
            for (identity, table) in runtime.counterStore.all {
                let overflows = table.overflowsSinceLastAsked()
                if overflows > 0 {
                    Log.warning("rate limit \(identity.rule): \(overflows) requests with new keys were counted together in "
                        + "one shared counter since the last sweep: the rule holds \(SharedCounterTable.defaultMaxKeys) keys at "
                        + "most (are clients inventing keys?)")
                }
            }
            do {
                try persistence?.prune(now: WallClock.nanoseconds())
            } catch {
                Log.warning("rate-limit state \(persistence?.database.path ?? ""): pruning old quota periods failed: \(error)")
            }
        }
    }
}

/// The sqlite store's write-behind: every second, the quota counters that changed are saved in one
/// transaction; once more when the gateway stops (after the listeners drained, so nothing counts after
/// it). A failed write is logged (once a minute at most) and counted, and tried again: the counts stay in
/// memory meanwhile.
struct QuotaWriterService: Service, CustomStringConvertible {
    let persistence: QuotaPersistence
    let metrics: GatewayMetrics
    var description: String { "quota writer" }

    func run() async throws {
        let lastWarning = Mutex(ContinuousClock.now - .seconds(120))
        let flush = { @Sendable () -> Error? in
            do {
                try persistence.flush()
                return nil
            } catch {
                return error
            }
        }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let failure = flush()
                metrics.recordRateLimitStateWrite(succeeded: failure == nil)
                if let error = failure {
                    let due = lastWarning.withLock { last in
                        guard ContinuousClock.now - last > .seconds(60) else { return false }
                        last = ContinuousClock.now
                        return true
                    }
                    if due {
                        Log.warning("rate-limit state \(persistence.database.path): saving quota counts failed: \(error); "
                            + "they are kept in memory and saved again every second")
                    }
                }
            }
        }
        if let error = flush() { Log.error("rate-limit state \(persistence.database.path): last save failed: \(error)") }
    }
}

/// Wall-clock nanoseconds, the clock rate-limit counters are kept on.
enum WallClock {
    static func nanoseconds(_ date: Date = Date()) -> Int64 { Int64(date.timeIntervalSince1970 * 1e9) }
}
