import Foundation
import GatehouseRouting
import GatehouseUpstream

/// The admin server's views of a snapshot: `/config_dump` (what is serving, as JSON) and `/clusters`
/// (upstream clusters and endpoints, in Envoy's text form or JSON). Read-only and built on demand, off
/// the request path. Secrets stay out: certificate and key paths are shown, never their contents.
public enum SnapshotDump {
    /// `/config_dump`: version, load time, listeners with their routes and policies, clusters, JWT rules, rate-limit rules.
    public static func configDump(_ snapshot: Snapshot) -> [UInt8] {
        let document: [String: Any] = [
            "version": snapshot.version,
            "loaded_at": ISO8601DateFormatter().string(from: snapshot.loadedAt),
            "summary": snapshot.summary,
            "listeners": snapshot.listeners.map(listener),
            "clusters": snapshot.clusters.values.sorted { $0.name < $1.name }.map { cluster($0) },
            "request_authentication": snapshot.authentication.rules.map { rule in
                ["rule": rule.label, "issuer": rule.requirements.issuer, "audiences": rule.requirements.audiences,
                 "forward_original_token": rule.forwardOriginalToken] as [String: Any]
            },
            "rate_limits": snapshot.rateLimits.rules.map { rule in
                ["rule": rule.id, "limit": rule.summary, "key": rule.keySpelling, "shadow": rule.shadow,
                 "match": rule.hasMatch, "allowed_response_headers": rule.reply.allowedHeaders] as [String: Any]
            },
            "not_applicable": snapshot.notApplicable.map { ["resource": $0.label, "at": "\($0.location)", "reason": $0.reason] },
            "skipped_kubernetes_resources": snapshot.skippedKubernetes,
            "settings": [
                "path_normalization": snapshot.settings.pathNormalization.rawValue,
                "access_log": snapshot.settings.accessLogEnabled ? (snapshot.settings.accessLogPath ?? "stdout") : "off",
                "drain_timeout_seconds": Double(snapshot.settings.drainTimeoutNanoseconds) / 1e9,
                "max_connections": snapshot.settings.maxConnections,
                "forward_client_cert_details": snapshot.settings.forwardClientCertDetails.rawValue,
                "rate_limit_store": rateLimitStore(snapshot.settings.rateLimitStore),
            ] as [String: Any],
        ]
        return json(document)
    }

    /// Where the counters live; a Redis URL without its password.
    static func rateLimitStore(_ store: RateLimitStoreSettings) -> [String: Any] {
        switch store {
        case .memory: ["type": "memory"]
        case .sqlite(let directory): ["type": "sqlite", "directory": directory]
        case .redis(let redis): ["type": "redis", "url": redis.url.description, "failure_mode": redis.failOpen ? "allow" : "deny",
                                 "timeout_ms": Double(redis.timeoutNanoseconds) / 1e6]
        }
    }

    /// `/clusters`: Envoy's text form, one `cluster::endpoint::field::value` line per fact, so the
    /// greps people run against Envoy work here too.
    /// `ejected` gives, for a cluster with outlier detection, which of its endpoints are ejected now
    /// (Envoy's `/failed_outlier_check`); there is no active health checking.
    /// `stats`: the cluster's failure counters by Envoy stat name, listed after its settings.
    /// `active`: requests in flight per endpoint (Envoy's per-host `rq_active`).
    public static func clustersText(_ snapshot: Snapshot, ejected: (Cluster) -> [Bool]? = { _ in nil },
                                    stats: (Cluster) -> [(String, Int)] = { _ in [] },
                                    active: (Cluster) -> [Int]? = { _ in nil }) -> String {
        var out = ""
        for cluster in snapshot.clusters.values.sorted(by: { $0.name < $1.name }) {
            out += "\(cluster.name)::discovery::\(cluster.discovery.envoyName)\n"
            out += "\(cluster.name)::lb_policy::\(cluster.loadBalancing.envoyName)\n"
            out += "\(cluster.name)::tls::\(cluster.tls?.mode.rawValue ?? "DISABLE")\n"
            for (name, value) in stats(cluster) { out += "\(cluster.name)::\(name)::\(value)\n" }
            let ejections = ejected(cluster)
            let inFlight = active(cluster)
            for (index, endpoint) in cluster.endpoints.enumerated() {
                let prefix = "\(cluster.name)::\(endpoint.description)"
                let isEjected = ejections.map { index < $0.count && $0[index] } ?? false
                out += "\(prefix)::health_flags::\(isEjected ? "/failed_outlier_check" : "healthy")\n"
                out += "\(prefix)::weight::1\n"
                let locality = Locality(endpoint.locality)
                out += "\(prefix)::region::\(locality.region)\n\(prefix)::zone::\(locality.zone)\n\(prefix)::sub_zone::\(locality.subzone)\n"
                out += "\(prefix)::priority::\(cluster.localityPlan?.priority(ofEndpoint: index) ?? 0)\n"
                out += "\(prefix)::rq_active::\(inFlight.map { index < $0.count ? $0[index] : 0 } ?? 0)\n"
            }
        }
        return out
    }

    /// `/clusters?format=json`.
    /// `/clusters?format=json`: the clusters as `/config_dump` shows them, with the same counts as the
    /// text form: the cluster's `stats`, and per endpoint its requests in flight, locality and priority.
    public static func clustersJSON(_ snapshot: Snapshot, ejected: (Cluster) -> [Bool]? = { _ in nil },
                                    stats: (Cluster) -> [(String, Int)] = { _ in [] },
                                    active: (Cluster) -> [Int]? = { _ in nil }) -> [UInt8] {
        json(["cluster_statuses": snapshot.clusters.values.sorted { $0.name < $1.name }.map { cluster in
            var out = self.cluster(cluster, ejected: ejected(cluster))
            out["stats"] = Dictionary(stats(cluster), uniquingKeysWith: { first, _ in first })
            let inFlight = active(cluster)
            out["endpoints"] = (out["endpoints"] as? [[String: Any]] ?? []).enumerated().map { index, endpoint in
                var endpoint = endpoint
                let locality = Locality(cluster.endpoints[index].locality)
                endpoint["locality"] = ["region": locality.region, "zone": locality.zone, "sub_zone": locality.subzone]
                endpoint["priority"] = cluster.localityPlan?.priority(ofEndpoint: index) ?? 0
                endpoint["rq_active"] = inFlight.map { index < $0.count ? $0[index] : 0 } ?? 0
                return endpoint
            }
            return out
        }])
    }

    static func listener(_ listener: Listener) -> [String: Any] {
        var out: [String: Any] = [
            "address": "\(listener.bindAddress):\(listener.port)",
            "gateways": listener.gateways,
            "authorization_policies": listener.authorization.policies,
        ]
        if let stream = listener.stream {
            out["protocol"] = stream.mode == .tcp ? "TCP" : "TLS_PASSTHROUGH"
        } else if let tls = listener.tls {
            out["protocol"] = "HTTPS"
            out["tls_servers"] = tls.servers.map { server in
                ["hosts": server.hosts, "certificate": server.certificateChainPath,
                 "client_certificates": "\(server.clientCertificates)",
                 "virtual_hosts": server.routes.virtualHosts.map(virtualHost)] as [String: Any]
            }
        } else {
            out["protocol"] = "HTTP"
            out["virtual_hosts"] = listener.routes.virtualHosts.map(virtualHost)
        }
        return out
    }

    static func virtualHost(_ host: VirtualHost) -> [String: Any] {
        ["domain": host.domain, "routes": host.routes.map { route in
            ["name": route.name ?? "", "action": action(route.action)] as [String: Any]
        }]
    }

    static func action(_ action: RouteAction) -> String {
        switch action {
        case .forward(let forward):
            forward.destinations.map { "\($0.cluster) (weight \($0.weight))" }.joined(separator: ", ")
        case .redirect(let redirect):
            "redirect \(redirect.code)"
        case .directResponse(let status, _):
            "direct response \(status)"
        }
    }

    static func cluster(_ cluster: Cluster, ejected: [Bool]? = nil) -> [String: Any] {
        var out: [String: Any] = [
            "name": cluster.name, "host": cluster.host, "port": cluster.port,
            "discovery": cluster.discovery.envoyName,
            "lb_policy": cluster.loadBalancing.envoyName,
            "protocol": cluster.http2 ? "HTTP2" : "HTTP1",
            "endpoints": cluster.endpoints.enumerated().map { index, endpoint in
                let isEjected = ejected.map { index < $0.count && $0[index] } ?? false
                return ["address": endpoint.description, "labels": endpoint.labels,
                        "health": isEjected ? "FAILED_OUTLIER_CHECK" : "HEALTHY"] as [String: Any]
            },
        ]
        if let policy = cluster.outlierDetection {
            out["outlier_detection"] = [
                "consecutive_5xx": policy.consecutive5xxErrors, "consecutive_gateway_failure": policy.consecutiveGatewayErrors,
                "interval_seconds": Double(policy.interval.wholeNanoseconds) / 1e9,
                "base_ejection_time_seconds": Double(policy.baseEjectionTime.wholeNanoseconds) / 1e9,
                "max_ejection_percent": policy.maxEjectionPercent, "min_health_percent": policy.minHealthPercent,
            ] as [String: Any]
        }
        return out
    }

    /// A JSON document as the admin server answers it (keys sorted, one line break at the end).
    public static func json(_ document: [String: Any]) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]))
            ?? Data("{}".utf8)
        return Array(data) + [UInt8(ascii: "\n")]
    }
}
