import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseIdentity
import GatehouseProxy
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOPosix

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Serve traffic with a configuration until SIGTERM or SIGINT.")

    @OptionGroup var config: ConfigPaths

    @Option(help: "Event loop threads (default: GATEHOUSE_EVENT_LOOPS or one per core).")
    var eventLoops: Int?

    func run() async throws {
        let paths = config.resolved
        let (set, diagnostics) = ConfigLoader.load(paths: paths)
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { Log.info("\(diagnostic)") }
        guard !diagnostics.hasErrors else {
            Log.info("configuration has \(diagnostics.errors.count) error(s); not starting")
            throw ExitCode(1)
        }
        // Read the environment before any thread starts: in release builds, reading it while a new thread
        // was starting corrupted the heap in about half of the starts (reproduced with 30 start/stop runs).
        let threads = eventLoops ?? ProcessInfo.processInfo.environment["GATEHOUSE_EVENT_LOOPS"].flatMap(Int.init)
            ?? System.coreCount
        let snapshot = try SnapshotCompiler.compile(set, version: 1)
        let tlsContexts = TLSContextStore()
        let tlsProblems = tlsContexts.prepare(snapshot)
        guard tlsProblems.isEmpty else {
            for diagnostic in tlsProblems { Log.info("\(diagnostic)") }
            Log.info("configuration has \(tlsProblems.count) error(s); not starting")
            throw ExitCode(1)
        }
        let settings = snapshot.settings
        let accessLog: AccessLogWriter?
        do {
            accessLog = settings.accessLogEnabled ? try AccessLogWriter(path: settings.accessLogPath) : nil
        } catch {
            Log.info("\(error)")
            throw ExitCode(1)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let store = SnapshotStore(snapshot)
        let runtime = ProxyRuntime(store: store, accessLog: accessLog, group: group, threadPool: threadPool,
                                   tlsContexts: tlsContexts)
        let server = GatewayServer(runtime: runtime, group: group)
        // One round of key fetches before listening, so tokens verify from the first request when the
        // JWKS endpoints answer; the ones that do not are retried in the background.
        await JWKSRefresh.once(store: store, cache: runtime.jwks, group: group)
        let signals = SignalStream([SIGTERM, SIGINT, SIGHUP])
        do {
            try await server.start()
        } catch {
            Log.info("\(error)")
            throw ExitCode(1)
        }
        var admin: Channel?
        if let host = settings.adminAddress, let port = settings.adminPort {
            do {
                admin = try await AdminServer(runtime: runtime, group: group).start(host: host, port: port)
            } catch {
                Log.info("\(error)")
                await server.drain(timeout: .zero)
                throw ExitCode(1)
            }
        }
        Log.info("gatehouse \(GatehouseVersion.string) serving \(snapshot.summary); listening on "
            + snapshot.listeners.map { "\($0.bindAddress):\($0.port)" }.joined(separator: ", ")
            + (admin != nil ? "; admin on \(settings.adminAddress ?? ""):\(settings.adminPort ?? 0)" : ""))

        let certificateWatch = Task.detached { await CertificateWatch.run(store: store, contexts: tlsContexts) }
        let jwksRefresh = Task.detached { await JWKSRefresh.run(store: store, cache: runtime.jwks, group: group) }
        var version = 1
        for await signal in signals.stream {
            if signal == SIGHUP {
                version += 1
                await Reloader.reload(paths: paths, store: store, tlsContexts: tlsContexts, version: version,
                                      jwks: runtime.jwks, group: group)
                continue
            }
            Log.info("received \(signal == SIGTERM ? "SIGTERM" : "SIGINT"): draining (a second signal exits at once)")
            signals.onNextSignal { _ in
                Log.info("second signal: exiting without waiting")
                Foundation.exit(1)
            }
            await server.drain(timeout: .nanoseconds(settings.drainTimeoutNanoseconds))
            break
        }
        certificateWatch.cancel()
        jwksRefresh.cancel()
        try? await admin?.close()
        accessLog?.close()
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        Log.info("stopped")
    }
}

/// SIGHUP: load, validate and compile the config again and swap the snapshot. Requests in flight keep
/// the snapshot they started with. Listener changes (ports added or removed) need a restart for now.
enum Reloader {
    static func reload(paths: [String], store: SnapshotStore, tlsContexts: TLSContextStore, version: Int,
                       jwks: JWKSCache, group: EventLoopGroup) async {
        let (set, diagnostics) = ConfigLoader.load(paths: paths)
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { Log.info("\(diagnostic)") }
        guard !diagnostics.hasErrors else {
            Log.info("reload rejected: \(diagnostics.errors.count) error(s); still serving version \(store.snapshot.version)")
            return
        }
        do {
            let next = try SnapshotCompiler.compile(set, version: version)
            let before = store.snapshot.listeners.map { "\($0.bindAddress):\($0.port)" }
            let after = next.listeners.map { "\($0.bindAddress):\($0.port)" }
            guard before == after else {
                Log.info("reload rejected: listeners changed (\(before) -> \(after)); restart to apply")
                return
            }
            let tlsProblems = tlsContexts.prepare(next)
            guard tlsProblems.isEmpty else {
                for diagnostic in tlsProblems { Log.info("\(diagnostic)") }
                Log.info("reload rejected: \(tlsProblems.count) error(s); still serving version \(store.snapshot.version)")
                return
            }
            // Keys of a jwksUri the new snapshot adds are fetched before it goes live, so its tokens do
            // not get 401 for the second the background refresh would take.
            await JWKSRefresh.once(snapshot: next, cache: jwks, group: group)
            store.replace(with: next)
            Log.info("reloaded: version \(version), \(next.summary)")
        } catch {
            Log.info("reload rejected: \(error)")
        }
    }
}

/// Certificate rotation: every two seconds, rebuild the TLS contexts whose files changed on disk (off
/// the event loops). New handshakes use the new files; open connections keep theirs.
enum CertificateWatch {
    static let interval: UInt64 = 2_000_000_000

    static func run(store: SnapshotStore, contexts: TLSContextStore) async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: interval)
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
        let messages = await cache.refresh(sources) { uri, timeout in
            try await JWKSFetcher.fetch(uri, timeout: timeout, group: group)
        }
        for message in messages { Log.info(message) }
    }

    static func run(store: SnapshotStore, cache: JWKSCache, group: EventLoopGroup) async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            await once(store: store, cache: cache, group: group)
        }
    }
}

enum Log {
    static func info(_ message: String) {
        FileHandle.standardError.write(Data("gatehouse: \(message)\n".utf8))
    }
}
