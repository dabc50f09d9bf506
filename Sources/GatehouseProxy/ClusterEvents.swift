import Synchronization

/// Per-cluster counts of the rare things an upstream does wrong, with Envoy's stat names, so an Istio
/// dashboard's `envoy_cluster_*` panels work: connect failures, TLS handshake failures, circuit-breaker
/// overflows, timeouts, outlier ejections and retries. Shared by every loop behind one lock: these are failures,
/// not the per-request path (a request that succeeds records nothing here).
final class ClusterEvents: Sendable {
    enum Event: Int, CaseIterable, Sendable {
        case connectFailure, tlsFailure, connectionOverflow, overflow, timeout, ejection
        case retry, retrySuccess, retryOverflow, retryLimitExceeded, perTryTimeout

        /// Envoy's cluster stat.
        var statName: String {
            switch self {
            case .connectFailure: "upstream_cx_connect_fail"
            case .tlsFailure: "ssl_connection_error"
            case .connectionOverflow: "upstream_cx_overflow"
            case .overflow: "upstream_rq_pending_overflow"
            case .timeout: "upstream_rq_timeout"
            case .ejection: "outlier_detection_ejections_enforced_total"
            case .retry: "upstream_rq_retry"
            case .retrySuccess: "upstream_rq_retry_success"
            case .retryOverflow: "upstream_rq_retry_overflow"
            case .retryLimitExceeded: "upstream_rq_retry_limit_exceeded"
            case .perTryTimeout: "upstream_rq_per_try_timeout"
            }
        }

        var help: String {
            switch self {
            case .connectFailure: "Upstream connections that could not be made (refused, unreachable, timed out), TLS failures included."
            case .tlsFailure: "Upstream TLS handshakes that failed (certificate refused, version or cipher mismatch, not TLS)."
            case .connectionOverflow: "Connections over the cluster's maxConnections: the request waited for one to come free, or (on a loop with none to the endpoint) one was made anyway."
            case .overflow: "Requests refused by the cluster's circuit breakers (connectionPool limits), answered 503 UO."
            case .timeout: "Requests whose route timeout fired before the upstream's response ended."
            case .ejection: "Endpoints ejected by outlier detection."
            case .retry: "Retries made (each try after a request's first)."
            case .retrySuccess: "Requests whose retry got a response that was not retried again."
            case .retryOverflow: "Retries refused by the cluster's maxRetries circuit breaker (UO)."
            case .retryLimitExceeded: "Requests whose last try was retriable but had no retry left (URX)."
            case .perTryTimeout: "Tries whose perTryTimeout fired before a response."
            }
        }
    }

    private let counts = Mutex<[String: [Int]]>([:])

    init() {}

    func record(_ event: Event, cluster: String, count: Int = 1) {
        guard count > 0 else { return }
        counts.withLock { counts in
            counts[cluster, default: Array(repeating: 0, count: Event.allCases.count)][event.rawValue] += count
        }
    }

    /// A connection that could not be made, and also a TLS failure when its reason says so.
    func recordConnectFailure(cluster: String, transportFailureReason: String?) {
        record(.connectFailure, cluster: cluster)
        if TLSFailureReason.isTLS(transportFailureReason) { record(.tlsFailure, cluster: cluster) }
    }

    /// The count of `event` for `cluster` (0 if it never happened).
    func count(_ event: Event, cluster: String) -> Int {
        counts.withLock { $0[cluster]?[event.rawValue] ?? 0 }
    }

    /// `/stats/prometheus` lines: each counter for every cluster in `clusters` (zeros included, so a
    /// rate() has a series from the start), and the ejected endpoints now (`ejectionsActive`).
    func prometheusText(clusters: [String], ejectionsActive: [String: Int], requestsActive: [String: Int] = [:],
                        requestsPending: [String: Int] = [:]) -> String {
        let counts = self.counts.withLock { $0 }
        var out = ""
        for event in Event.allCases {
            let name = "envoy_cluster_\(event.statName)"
            out += "# HELP \(name) \(event.help)\n# TYPE \(name) counter\n"
            for cluster in clusters {
                out += "\(name){cluster_name=\"\(cluster)\"} \(counts[cluster]?[event.rawValue] ?? 0)\n"
            }
        }
        out += "# HELP envoy_cluster_outlier_detection_ejections_active Endpoints ejected now.\n"
        out += "# TYPE envoy_cluster_outlier_detection_ejections_active gauge\n"
        for cluster in clusters {
            out += "envoy_cluster_outlier_detection_ejections_active{cluster_name=\"\(cluster)\"} \(ejectionsActive[cluster] ?? 0)\n"
        }
        for (name, help, values) in [("upstream_rq_active", "Requests in flight to the cluster (after a reload, those of the live configuration).", requestsActive),
                                     ("upstream_rq_pending_active", "Requests waiting for a new HTTP/1.1 upstream connection.", requestsPending)] {
            out += "# HELP envoy_cluster_\(name) \(help)\n# TYPE envoy_cluster_\(name) gauge\n"
            for cluster in clusters { out += "envoy_cluster_\(name){cluster_name=\"\(cluster)\"} \(values[cluster] ?? 0)\n" }
        }
        return out
    }
}
