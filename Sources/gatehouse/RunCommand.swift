import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseIdentity
import GatehouseProxy
import GatehouseStateStore
import GatehouseSnapshot
import GatehouseTelemetry
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Serve traffic with a configuration until SIGTERM or SIGINT.")

    @OptionGroup var config: ConfigPaths

    @Option(help: "Event loop threads (default: GATEHOUSE_EVENT_LOOPS, else one per CPU the process may use: affinity and cgroup quota).")
    var eventLoops: Int?

    @Flag(inversion: .prefixedNo, help: "Reload when a file under the config paths changes (SIGHUP always reloads).")
    var watchConfig = true

    @Option(help: "Diagnostics on standard error: text (`gatehouse: message`) or json (one object per line, for journald and log shippers). Default: GATEHOUSE_LOG_FORMAT, else text.")
    var logFormat: DiagnosticsLogHandler.Format?

    func run() async throws {
        // Read the environment before any thread starts: in release builds, reading it while a new thread
        // was starting corrupted the heap in about half of the starts (reproduced with 30 start/stop runs).
        let environment = ProcessInfo.processInfo.environment
        let fromEnvironment = environment["GATEHOUSE_LOG_FORMAT"].map { ($0, DiagnosticsLogHandler.Format(rawValue: $0)) }
        if logFormat == nil, let (value, format) = fromEnvironment, format == nil {
            // Fail closed, as for the flag: a typo must not silently give the format a shipper cannot parse.
            FileHandle.standardError.write(Data("gatehouse: GATEHOUSE_LOG_FORMAT=\(value) is not one of text, json\n".utf8))
            throw ExitCode(64)
        }
        let format = logFormat ?? fromEnvironment?.1 ?? .text
        LoggingSystem.bootstrap { _ in DiagnosticsLogHandler(format: format) }
        let paths = config.resolved
        // Taken before the files are read, so a change written while the gateway starts up is reloaded
        // (the watch only begins once the listeners are serving).
        let stampsAtLoad = ConfigWatch.stamps(paths)
        let loaded = ConfigPipeline.load(paths: paths)
        let diagnostics = loaded.diagnostics
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { Log.info("\(diagnostic)") }
        guard !diagnostics.hasErrors else {
            Log.error("configuration has \(diagnostics.errors.count) error(s); not starting")
            throw ExitCode(1)
        }
        let configuredLoops = eventLoops ?? environment["GATEHOUSE_EVENT_LOOPS"].flatMap(Int.init)
        let budget = CPUBudget.current()
        let threads = max(1, configuredLoops ?? budget.loops)
        let notifier = SystemdNotifier(environment: environment)
        let snapshot = try SnapshotCompiler.compile(loaded, version: 1)
        let tlsContexts = TLSContextStore()
        let tlsProblems = tlsContexts.prepare(snapshot)
        guard tlsProblems.isEmpty else {
            for diagnostic in tlsProblems { Log.info("\(diagnostic)") }
            Log.error("configuration has \(tlsProblems.count) error(s); not starting")
            throw ExitCode(1)
        }
        let settings = snapshot.settings
        let accessLog: AccessLogWriter?
        do {
            accessLog = settings.accessLogEnabled ? try AccessLogWriter(path: settings.accessLogPath) : nil
        } catch {
            Log.error("\(error)")
            throw ExitCode(1)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let store = SnapshotStore(snapshot)
        let runtime: ProxyRuntime
        do {
            runtime = try ProxyRuntime(store: store, accessLog: accessLog, group: group, threadPool: threadPool,
                                       tlsContexts: tlsContexts, storeLog: { Log.warning($0) })
        } catch {
            Log.error("rate-limit store: cannot make its TLS context: \(error)")
            throw ExitCode(1)
        }
        let server = GatewayServer(runtime: runtime, group: group)
        let quotas: QuotaPersistence?
        do {
            quotas = try QuotaStore.open(settings.rateLimitStore, snapshot: snapshot, counters: runtime.counterStore)
        } catch {
            Log.error("\(error)")
            throw ExitCode(1)
        }
        // One round of key fetches before listening, so tokens verify from the first request when the
        // JWKS endpoints answer; the ones that do not are retried in the background.
        await JWKSRefresh.once(store: store, cache: runtime.jwks, group: group)
        let signals = SignalStream([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        do {
            try await server.start()
        } catch {
            Log.error("\(error)")
            throw ExitCode(1)
        }
        var admin: Channel?
        if let host = settings.adminAddress, let port = settings.adminPort {
            do {
                admin = try await AdminServer(runtime: runtime, group: group).start(host: host, port: port)
            } catch {
                Log.error("\(error)")
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
                                notifier: notifier, quotas: quotas)
        // Stopped in reverse order: listeners drain first, the access log closes last (see GatewayServices).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let accessLog { services.append(.init(service: AccessLogService(writer: accessLog))) }
        if let quotas { services.append(.init(service: QuotaWriterService(persistence: quotas, metrics: runtime.metrics))) }
        if let watchdog = notifier.watchdogService() { services.append(.init(service: watchdog)) }
        services.append(.init(service: CertificateWatch.service(store: store, contexts: tlsContexts)))
        services.append(.init(service: JWKSRefresh.service(store: store, cache: runtime.jwks, group: group)))
        services.append(.init(service: RateLimitSweep.service(runtime: runtime, persistence: quotas)))
        if watchConfig { services.append(.init(service: ConfigWatch(paths: paths, reloader: reloader, loadedStamps: stampsAtLoad))) }
        if let admin { services.append(.init(service: AdminService(channel: admin))) }
        services.append(.init(service: ListenerService(server: server, notifier: notifier,
                                                       drainTimeout: .nanoseconds(settings.drainTimeoutNanoseconds))))
        // Returning (on SIGTERM or SIGINT) is what shuts the group down.
        services.append(.init(service: SignalService(signals: signals, reloader: reloader, accessLog: accessLog),
                              successTerminationBehavior: .gracefullyShutdownGroup))
        let serviceGroup = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: Log.logger))
        do {
            try await serviceGroup.run()
        } catch {
            Log.error("\(error)")
        }
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        Log.info("stopped")
    }
}
