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

    @Option(help: "Event loop threads (default: GATEHOUSE_EVENT_LOOPS, else one per CPU the process may use: affinity and cgroup quota).")
    var eventLoops: Int?

    @Flag(inversion: .prefixedNo, help: "Reload when a file under the config paths changes (SIGHUP always reloads).")
    var watchConfig = true

    func run() async throws {
        let paths = config.resolved
        let loaded = ConfigPipeline.load(paths: paths)
        let diagnostics = loaded.diagnostics
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { Log.info("\(diagnostic)") }
        guard !diagnostics.hasErrors else {
            Log.info("configuration has \(diagnostics.errors.count) error(s); not starting")
            throw ExitCode(1)
        }
        // Read the environment before any thread starts: in release builds, reading it while a new thread
        // was starting corrupted the heap in about half of the starts (reproduced with 30 start/stop runs).
        let environment = ProcessInfo.processInfo.environment
        let configuredLoops = eventLoops ?? environment["GATEHOUSE_EVENT_LOOPS"].flatMap(Int.init)
        let budget = CPUBudget.current()
        let threads = max(1, configuredLoops ?? budget.loops)
        let notifier = SystemdNotifier(environment: environment)
        let snapshot = try SnapshotCompiler.compile(loaded, version: 1)
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
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let store = SnapshotStore(snapshot)
        let runtime = ProxyRuntime(store: store, accessLog: accessLog, group: group, threadPool: threadPool,
                                   tlsContexts: tlsContexts)
        let server = GatewayServer(runtime: runtime, group: group)
        // One round of key fetches before listening, so tokens verify from the first request when the
        // JWKS endpoints answer; the ones that do not are retried in the background.
        await JWKSRefresh.once(store: store, cache: runtime.jwks, group: group)
        let signals = SignalStream([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
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
        Log.info("\(threads) event loop\(threads == 1 ? "" : "s") ("
            + (configuredLoops != nil ? "configured" : "one per usable CPU, bounded by \(budget.reason)") + ")")
        for line in ConfigNotices.lines(snapshot) { Log.info(line) }
        runtime.metrics.recordInitialConfig(version: snapshot.version, at: snapshot.loadedAt.timeIntervalSince1970)
        notifier.ready(status: "serving config version \(snapshot.version)")

        let reloader = Reloader(paths: paths, store: store, tlsContexts: tlsContexts, server: server, group: group,
                                notifier: notifier)
        let background = [
            Task.detached { await CertificateWatch.run(store: store, contexts: tlsContexts) },
            Task.detached { await JWKSRefresh.run(store: store, cache: runtime.jwks, group: group) },
            Task.detached { await notifier.runWatchdog() },
        ] + (watchConfig ? [Task.detached { await ConfigWatch.run(paths: paths, reloader: reloader) }] : [])
        for await signal in signals.stream {
            switch signal {
            case SIGHUP:
                // Not awaited: signals keep being read (a SIGTERM during a slow reload still drains).
                Task { await reloader.request(reason: "SIGHUP") }
                continue
            case SIGUSR1:
                if let accessLog, accessLog.writesToFile {
                    Log.info(accessLog.reopen().map { "SIGUSR1: \($0)" } ?? "SIGUSR1: access log reopened")
                } else {
                    Log.info("SIGUSR1: the access log is standard output or off; nothing to reopen")
                }
                continue
            default:
                break
            }
            Log.info("received \(signal == SIGTERM ? "SIGTERM" : "SIGINT"): draining (a second signal exits at once)")
            notifier.stopping()
            signals.onNextSignal { _ in
                Log.info("second signal: exiting without waiting")
                Foundation.exit(1)
            }
            await server.drain(timeout: .nanoseconds(settings.drainTimeoutNanoseconds))
            break
        }
        for task in background { task.cancel() }
        try? await admin?.close()
        accessLog?.close()
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        Log.info("stopped")
    }
}
