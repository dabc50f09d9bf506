import Foundation
import GatehouseProxy
import GatehouseTelemetry
import NIOCore
import ServiceLifecycle

// What `gatehouse run` runs once it listens, as services of one ServiceGroup. The group stops them in
// the reverse of the order `RunCommand` lists them: the listeners drain first, while the watchdog keeps
// systemd informed and the access log still takes lines; the access log closes last.

/// The listeners: they serve until the group shuts down, then drain (in-flight requests finish, up to
/// the drain timeout) and flush every loop's access-log lines.
struct ListenerService: Service {
    let server: GatewayServer
    let notifier: SystemdNotifier
    let drainTimeout: TimeAmount

    func run() async throws {
        try? await gracefulShutdown()
        notifier.stopping()
        await server.drain(timeout: drainTimeout)
    }
}

/// The admin listener (`/ready`, `/stats/prometheus`, `/config_dump`), closed after the drain so
/// readiness and metrics answer while it runs.
struct AdminService: Service {
    let channel: Channel

    func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// The access log's writer thread, closed last, after every line of the drain reached it.
struct AccessLogService: Service {
    let writer: AccessLogWriter

    func run() async throws {
        try? await gracefulShutdown()
        writer.close()
    }
}

/// Work repeated on a timer until the group shuts down (certificate rotation, JWKS refresh, the systemd
/// watchdog, the config file watch).
struct PeriodicService: Service, CustomStringConvertible {
    let description: String
    let interval: Duration
    let tick: @Sendable () async -> Void

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await tick()
            }
        }
    }
}

/// The process's signals. SIGHUP reloads and SIGUSR1 reopens the access log; SIGTERM or SIGINT logs the
/// drain and returns, which shuts the group down gracefully (the group is configured so). A second
/// SIGTERM or SIGINT during the drain exits at once.
struct SignalService: Service {
    let signals: SignalStream
    let reloader: Reloader
    let accessLog: AccessLogWriter?

    func run() async throws {
        for await signal in signals.stream.cancelOnGracefulShutdown() {
            switch signal {
            case SIGHUP:
                // Not awaited: signals keep being read (a SIGTERM during a slow reload still drains).
                Task { await reloader.request(reason: "SIGHUP") }
            case SIGUSR1:
                if let accessLog, accessLog.writesToFile {
                    Log.info(accessLog.reopen().map { "SIGUSR1: \($0)" } ?? "SIGUSR1: access log reopened")
                } else {
                    Log.info("SIGUSR1: the access log is standard output or off; nothing to reopen")
                }
            default:
                Log.info("received \(signal == SIGTERM ? "SIGTERM" : "SIGINT"): draining (a second signal exits at once)")
                signals.onNextSignal { _ in
                    Log.info("second signal: exiting without waiting")
                    Foundation.exit(1)
                }
                return
            }
        }
    }
}
