import Synchronization

/// The gateway's counters, shared by every event loop and read by the admin server. Protection events
/// are rare, so one lock guards them; per-request counts live per event loop (`DecisionCounters`).
public final class GatewayMetrics: Sendable {
    private let protection = Mutex<[Int]>(Array(repeating: 0, count: ProtectionEvent.allCases.count))
    private static let index: [ProtectionEvent: Int] = Dictionary(
        uniqueKeysWithValues: ProtectionEvent.allCases.enumerated().map { ($1, $0) })

    /// Per-event-loop counters of policy and JWT outcomes (see `DecisionCounters`), summed at scrape.
    private let loopCounters = Mutex<[DecisionCounters]>([])

    public init() {}

    /// Counters for one event loop; the metrics keep a reference to read them at scrape time.
    public func makeDecisionCounters() -> DecisionCounters {
        let counters = DecisionCounters()
        loopCounters.withLock { $0.append(counters) }
        return counters
    }

    /// Decisions by (policy, action, decision) and JWT outcomes, summed over every loop.
    func decisionTotals() -> (authz: [DecisionCounters.Key: Int], authn: [String: Int]) {
        var authz: [DecisionCounters.Key: Int] = [:]
        var authn: [String: Int] = [:]
        for counters in loopCounters.withLock({ $0 }) {
            let (decisions, outcomes) = counters.snapshot()
            authz.merge(decisions, uniquingKeysWith: +)
            authn.merge(outcomes, uniquingKeysWith: +)
        }
        return (authz, authn)
    }

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
        let totals = decisionTotals()
        let decisions = totals.authz.sorted { ($0.key.policy, $0.key.action, $0.key.decision) < ($1.key.policy, $1.key.action, $1.key.decision) }
        out += """
        # HELP gatehouse_authz_decisions_total Requests decided by an AuthorizationPolicy rule (or denied by default), by policy, action and decision.
        # TYPE gatehouse_authz_decisions_total counter

        """
        for (key, count) in decisions {
            out += "gatehouse_authz_decisions_total{policy=\"\(Self.escape(key.policy))\",action=\"\(key.action)\",decision=\"\(key.decision)\"} \(count)\n"
        }
        let outcomes = totals.authn.sorted { $0.key < $1.key }
        out += """
        # HELP gatehouse_jwt_authentications_total Requests that carried a JWT, by outcome (authenticated or Envoy's failure reason).
        # TYPE gatehouse_jwt_authentications_total counter

        """
        for (outcome, count) in outcomes {
            out += "gatehouse_jwt_authentications_total{outcome=\"\(Self.escape(outcome))\"} \(count)\n"
        }
        return out
    }

    /// Prometheus label-value escaping: backslash, quote, newline.
    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
