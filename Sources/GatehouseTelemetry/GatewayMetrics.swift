import Synchronization

/// The gateway's counters, shared by every event loop and read by the admin server. Protection events
/// are rare, so one lock guards them; per-request counts live per event loop (`DecisionCounters`).
public final class GatewayMetrics: Sendable {
    private let protection = Mutex<[Int]>(Array(repeating: 0, count: ProtectionEvent.allCases.count))
    private static let index: [ProtectionEvent: Int] = Dictionary(
        uniqueKeysWithValues: ProtectionEvent.allCases.enumerated().map { ($1, $0) })
    /// Header fields dropped rather than written, by reason (rare, so one lock as well).
    private let droppedFields = Mutex<[Int]>(Array(repeating: 0, count: DroppedField.allCases.count))

    /// Per-event-loop counters of policy and JWT outcomes (see `DecisionCounters`), summed at scrape.
    private let loopCounters = Mutex<[DecisionCounters]>([])

    /// Config reloads: how many were applied or rejected, and what serves now.
    private let reloads = Mutex(ReloadStats())

    public struct ReloadStats: Sendable, Equatable {
        public var applied = 0
        public var rejected = 0
        public var version = 1
        /// Seconds since the epoch of the last snapshot that went live (the first one at start-up).
        public var loadedAt: Double = 0

        public init(applied: Int = 0, rejected: Int = 0, version: Int = 1, loadedAt: Double = 0) {
            self.applied = applied
            self.rejected = rejected
            self.version = version
            self.loadedAt = loadedAt
        }
    }

    /// The sqlite rate-limit store's write-behind transactions: [saved, failed].
    private let stateWrites = Mutex<[Int]>([0, 0])

    public init() {}

    public func recordRateLimitStateWrite(succeeded: Bool) {
        stateWrites.withLock { $0[succeeded ? 0 : 1] += 1 }
    }

    /// The snapshot serving at start-up.
    public func recordInitialConfig(version: Int, at time: Double) {
        reloads.withLock { $0.version = version; $0.loadedAt = time }
    }

    /// A reload that went live (`version`, at `time`) or was rejected (nil).
    public func recordReload(appliedVersion version: Int?, at time: Double) {
        reloads.withLock { stats in
            guard let version else { stats.rejected += 1; return }
            stats.applied += 1
            stats.version = version
            stats.loadedAt = time
        }
    }

    public var reloadStats: ReloadStats { reloads.withLock { $0 } }

    /// Counters for one event loop; the metrics keep a reference to read them at scrape time.
    public func makeDecisionCounters() -> DecisionCounters {
        let counters = DecisionCounters()
        loopCounters.withLock { $0.append(counters) }
        return counters
    }

    /// Per-event-loop Istio request and TCP metrics (see `RequestMetrics`), summed at scrape.
    private let loopRequests = Mutex<[RequestMetrics]>([])

    /// Request metrics for one event loop; the metrics keep a reference to read them at scrape time.
    public func makeRequestMetrics() -> RequestMetrics {
        let metrics = RequestMetrics()
        loopRequests.withLock { $0.append(metrics) }
        return metrics
    }

    /// Every loop's request and TCP series, merged.
    func requestTotals() -> RequestMetrics.State {
        var total = RequestMetrics.State()
        for metrics in loopRequests.withLock({ $0 }) {
            let state = metrics.snapshot()
            for (key, series) in state.requests { total.requests[key, default: RequestMetrics.RequestSeries()].merge(series) }
            for (key, series) in state.tcp { total.tcp[key, default: RequestMetrics.TCPSeries()].merge(series) }
        }
        return total
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

    public func record(_ reason: DroppedField, count: Int = 1) {
        guard count > 0 else { return }
        let slot = DroppedField.allCases.firstIndex(of: reason)!
        droppedFields.withLock { $0[slot] += count }
    }

    public func count(_ reason: DroppedField) -> Int {
        let slot = DroppedField.allCases.firstIndex(of: reason)!
        return droppedFields.withLock { $0[slot] }
    }

    public func count(_ event: ProtectionEvent) -> Int {
        let slot = Self.index[event]!
        return protection.withLock { $0[slot] }
    }

    /// Prometheus text exposition format 0.0.4. Every event is listed, zeros included, so a dashboard
    /// can rate() a series before its first event.
    /// `istio` names the gateway and maps a cluster name to its service, for Istio's metrics; without
    /// it they are left out.
    public func prometheusText(activeConnections: Int, draining: Bool,
                               accessLog: (written: Int, dropped: Int)? = nil,
                               istio: (source: IstioMetrics.Source, destination: (String?) -> IstioMetrics.Destination)? = nil)
        -> String {
        let counts = protection.withLock { $0 }
        var out = """
        # HELP gatehouse_downstream_protection_events_total Connections and requests cut off or refused to protect the gateway, by cause.
        # TYPE gatehouse_downstream_protection_events_total counter

        """
        for (slot, event) in ProtectionEvent.allCases.enumerated() {
            out += "gatehouse_downstream_protection_events_total{event=\"\(event.rawValue)\"} \(counts[slot])\n"
        }
        let dropped = droppedFields.withLock { $0 }
        out += """
        # HELP gatehouse_header_fields_dropped_total Header fields not written toward a peer because they were invalid or prohibited there, by reason.
        # TYPE gatehouse_header_fields_dropped_total counter

        """
        for (slot, reason) in DroppedField.allCases.enumerated() {
            out += "gatehouse_header_fields_dropped_total{reason=\"\(reason.rawValue)\"} \(dropped[slot])\n"
        }
        out += """
        # HELP gatehouse_downstream_connections_active Open client connections.
        # TYPE gatehouse_downstream_connections_active gauge
        gatehouse_downstream_connections_active \(activeConnections)
        # HELP gatehouse_server_draining 1 while the gateway drains before exiting.
        # TYPE gatehouse_server_draining gauge
        gatehouse_server_draining \(draining ? 1 : 0)

        """
        let stats = reloadStats
        out += """
        # HELP gatehouse_config_reloads_total Config reloads (SIGHUP or a config file change), by result: applied, or rejected with the old config still serving.
        # TYPE gatehouse_config_reloads_total counter
        gatehouse_config_reloads_total{result="applied"} \(stats.applied)
        gatehouse_config_reloads_total{result="rejected"} \(stats.rejected)
        # HELP gatehouse_config_version Version of the config snapshot serving (1 at start-up, +1 per reload attempt).
        # TYPE gatehouse_config_version gauge
        gatehouse_config_version \(stats.version)
        # HELP gatehouse_config_last_reload_timestamp_seconds When the serving config snapshot went live.
        # TYPE gatehouse_config_last_reload_timestamp_seconds gauge
        gatehouse_config_last_reload_timestamp_seconds \(stats.loadedAt)

        """
        if let accessLog {
            out += """
            # HELP gatehouse_access_log_lines_total Access-log lines, by outcome: written, or dropped (disk full, file gone, buffer full).
            # TYPE gatehouse_access_log_lines_total counter
            gatehouse_access_log_lines_total{outcome="written"} \(accessLog.written)
            gatehouse_access_log_lines_total{outcome="dropped"} \(accessLog.dropped)

            """
        }
        let totals = decisionTotals()
        let decisions = totals.authz.sorted { ($0.key.policy, $0.key.action, $0.key.decision) < ($1.key.policy, $1.key.action, $1.key.decision) }
        out += """
        # HELP gatehouse_authz_decisions_total Requests decided by an AuthorizationPolicy rule (or denied by default), by policy, action and decision.
        # TYPE gatehouse_authz_decisions_total counter

        """
        for (key, count) in decisions {
            out += "gatehouse_authz_decisions_total{policy=\"\(Self.escape(key.policy))\",action=\"\(key.action)\",decision=\"\(key.decision)\"} \(count)\n"
        }
        var limits: [DecisionCounters.RateLimitKey: Int] = [:]
        for counters in loopCounters.withLock({ $0 }) { limits.merge(counters.rateLimitSnapshot(), uniquingKeysWith: +) }
        out += """
        # HELP gatehouse_ratelimit_requests_total Requests a RateLimitPolicy rule matched, by rule (ns/policy/rule) and outcome (allowed, limited, shadow_limited).
        # TYPE gatehouse_ratelimit_requests_total counter

        """
        for (key, count) in limits.sorted(by: { ($0.key.rule, $0.key.outcome.rawValue) < ($1.key.rule, $1.key.outcome.rawValue) }) {
            out += "gatehouse_ratelimit_requests_total{rule=\"\(Self.escape(key.rule))\",outcome=\"\(key.outcome.rawValue)\"} \(count)\n"
        }
        let writes = stateWrites.withLock { $0 }
        if writes != [0, 0] {
            out += """
            # HELP gatehouse_ratelimit_state_writes_total The sqlite rate-limit store's write-behind transactions (one a second), by outcome.
            # TYPE gatehouse_ratelimit_state_writes_total counter
            gatehouse_ratelimit_state_writes_total{outcome="saved"} \(writes[0])
            gatehouse_ratelimit_state_writes_total{outcome="failed"} \(writes[1])

            """
        }
        let outcomes = totals.authn.sorted { $0.key < $1.key }
        out += """
        # HELP gatehouse_jwt_authentications_total Requests that carried a JWT, by outcome (authenticated or Envoy's failure reason).
        # TYPE gatehouse_jwt_authentications_total counter

        """
        for (outcome, count) in outcomes {
            out += "gatehouse_jwt_authentications_total{outcome=\"\(Self.escape(outcome))\"} \(count)\n"
        }
        if let istio {
            out += IstioMetrics.exposition(requestTotals(), source: istio.source, destination: istio.destination)
        }
        return out
    }

    /// Prometheus label-value escaping, for series other modules print.
    public static func labelValue(_ value: String) -> String { escape(value) }

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
