import Foundation
import GatehouseConfig
import GatehouseIdentity
import GatehouseProxy
import GatehouseStateStore
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore

/// Config reloads (SIGHUP, or a change under the config paths): load, validate and compile off the event
/// loops, bind any new listener, swap the snapshot, then close removed listeners. A config that fails any
/// step is rejected with its messages and the running snapshot stays. Requests in flight keep the
/// snapshot they started with.
///
/// An actor, so reloads never overlap; requests that arrive while one runs collapse into one more run
/// after it (twenty SIGHUPs in a second cost two reloads, and the last config wins).
actor Reloader {
    private let paths: [String]
    private let store: SnapshotStore
    private let tlsContexts: TLSContextStore
    private let server: GatewayServer
    private let group: EventLoopGroup
    private let notifier: SystemdNotifier
    /// The sqlite rate-limit store, when the gateway started with one.
    private let quotas: QuotaPersistence?
    private var version: Int
    private var running = false
    /// Why the next run is wanted, when one was asked for during the current one.
    private var pending: String?

    init(paths: [String], store: SnapshotStore, tlsContexts: TLSContextStore, server: GatewayServer,
         group: EventLoopGroup, notifier: SystemdNotifier, quotas: QuotaPersistence? = nil) {
        self.quotas = quotas
        self.paths = paths
        self.store = store
        self.tlsContexts = tlsContexts
        self.server = server
        self.group = group
        self.notifier = notifier
        version = store.snapshot.version
    }

    private var metrics: GatewayMetrics { server.runtime.metrics }

    /// Reloads now, or once more after the reload under way.
    func request(reason: String) async {
        if running {
            pending = pending.map { $0 == reason ? $0 : "\($0), \(reason)" } ?? reason
            return
        }
        running = true
        var next: String? = reason
        while let reason = next {
            pending = nil
            await reload(reason: reason)
            next = pending
        }
        running = false
    }

    private func reload(reason: String) async {
        // Listeners closed by the drain must not be bound again by a late reload.
        guard !server.runtime.isDraining else {
            Log.info("reload (\(reason)) skipped: draining")
            return
        }
        version += 1
        notifier.reloading()
        let applied = await attempt(version: version, reason: reason)
        metrics.recordReload(appliedVersion: applied ? version : nil, at: Date().timeIntervalSince1970)
        let serving = store.snapshot
        notifier.reloaded(status: "serving config version \(serving.version)")
    }

    /// true when version `version` went live.
    private func attempt(version: Int, reason: String) async -> Bool {
        let serving = store.snapshot.version
        let loaded = ConfigPipeline.load(paths: paths)
        let diagnostics = loaded.diagnostics
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { Log.info("\(diagnostic)") }
        guard !diagnostics.hasErrors else {
            Log.info("reload rejected (\(reason)): \(diagnostics.errors.count) error(s); still serving version \(serving)")
            return false
        }
        let next: Snapshot
        do {
            next = try SnapshotCompiler.compile(loaded, version: version)
        } catch {
            Log.info("reload rejected (\(reason)): \(error); still serving version \(serving)")
            return false
        }
        // New contexts are built beside the live ones and added only once nothing can reject the reload:
        // a rejected reload leaves every handshake as it was.
        let (stagedTLS, tlsProblems) = tlsContexts.stage(next)
        guard tlsProblems.isEmpty else {
            for diagnostic in tlsProblems { Log.info("\(diagnostic)") }
            Log.info("reload rejected (\(reason)): \(tlsProblems.count) error(s); still serving version \(serving)")
            return false
        }
        // Keys of a jwksUri the new snapshot adds are fetched before it goes live, so its tokens do not
        // get 401 for the second the background refresh would take.
        await JWKSRefresh.once(snapshot: next, cache: server.runtime.jwks, group: group)
        let listeners: GatewayServer.ListenerChange
        do {
            listeners = try await server.prepare(for: next)
        } catch {
            Log.info("reload rejected (\(reason)): \(error); still serving version \(serving)")
            return false
        }
        // Saved quota counts of rules this version adds are read before it goes live, so no request
        // counts in a table that is about to be filled.
        do {
            try quotas?.prepare(next.rateLimits.identities, version: next.version, now: WallClock.nanoseconds())
        } catch {
            Log.info("reload rejected (\(reason)): rate-limit state \(quotas?.database.path ?? ""): \(error); still serving version \(serving)")
            return false
        }
        let previous = store.snapshot.settings
        tlsContexts.install(stagedTLS)
        store.replace(with: next)
        tlsContexts.prune(keeping: stagedTLS)
        let problems = await server.commit(listeners)
        if previous.adminAddress != next.settings.adminAddress || previous.adminPort != next.settings.adminPort
            || previous.accessLogPath != next.settings.accessLogPath || previous.accessLogEnabled != next.settings.accessLogEnabled
            || previous.rateLimitStore != next.settings.rateLimitStore {
            Log.info("reload (\(reason)): the Bootstrap's admin, accessLog, stateDir and rateLimitStore settings take effect at the next restart")
        }
        for problem in problems { Log.info("reload (\(reason)): \(problem)") }
        Log.info("reloaded: version \(version) (\(reason)), \(next.summary)"
            + (listeners.isEmpty ? "" : "; listeners \(listeners.summary)"))
        for line in ConfigNotices.lines(next) { Log.info(line) }
        return true
    }
}
