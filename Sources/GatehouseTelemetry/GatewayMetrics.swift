import Synchronization

/// The gateway's counters, shared by every event loop and read by the admin server. Protection events
/// are rare, so one lock guards them; nothing on the per-request hot path touches it.
public final class GatewayMetrics: Sendable {
    private let protection = Mutex<[Int]>(Array(repeating: 0, count: ProtectionEvent.allCases.count))
    private static let index: [ProtectionEvent: Int] = Dictionary(
        uniqueKeysWithValues: ProtectionEvent.allCases.enumerated().map { ($1, $0) })

    public init() {}

    public func record(_ event: ProtectionEvent) {
        let slot = Self.index[event]!
        protection.withLock { $0[slot] += 1 }
    }

    public func count(_ event: ProtectionEvent) -> Int {
        let slot = Self.index[event]!
        return protection.withLock { $0[slot] }
    }

    /// Prometheus text exposition format 0.0.4. Every event is listed, zeros included, so a dashboard
    /// can rate() a series before its first event.
    public func prometheusText(activeConnections: Int, draining: Bool) -> String {
        let counts = protection.withLock { $0 }
        var out = """
        # HELP gatehouse_downstream_protection_events_total Connections and requests cut off or refused to protect the gateway, by cause.
        # TYPE gatehouse_downstream_protection_events_total counter

        """
        for (slot, event) in ProtectionEvent.allCases.enumerated() {
            out += "gatehouse_downstream_protection_events_total{event=\"\(event.rawValue)\"} \(counts[slot])\n"
        }
        out += """
        # HELP gatehouse_downstream_connections_active Open client connections.
        # TYPE gatehouse_downstream_connections_active gauge
        gatehouse_downstream_connections_active \(activeConnections)
        # HELP gatehouse_server_draining 1 while the gateway drains before exiting.
        # TYPE gatehouse_server_draining gauge
        gatehouse_server_draining \(draining ? 1 : 0)

        """
        return out
    }
}
