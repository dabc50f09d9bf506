/// Istio's standard metrics, with Istio's names, labels and buckets, so the dashboards and alerts made
/// for an Istio gateway read Gatehouse unchanged. The gateway reports as Istio gateways do:
/// `reporter="source"`, the gateway itself as the source workload.
public enum IstioMetrics {
    /// Istio's default buckets for `istio_request_duration_milliseconds`.
    static let durationBucketsMillis: [Double] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                                  30000, 60000, 300000, 600000, 1800000, 3600000]
    /// Istio's buckets for `istio_request_bytes` and `istio_response_bytes`: powers of ten.
    static let sizeBuckets: [Double] = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000]

    /// Who the gateway is (the `source_*` labels).
    public struct Source: Sendable {
        public var workload: String
        public var namespace: String
        public var principal: String
        public var labels: [String: String]

        public init(workload: String, namespace: String, principal: String, labels: [String: String]) {
            self.workload = workload
            self.namespace = namespace
            self.principal = principal
            self.labels = labels
        }
    }

    /// What a cluster stands for (the `destination_*` labels).
    public struct Destination: Sendable {
        public var service: String
        public var serviceName: String
        public var serviceNamespace: String

        public init(service: String, serviceName: String, serviceNamespace: String) {
            self.service = service
            self.serviceName = serviceName
            self.serviceNamespace = serviceNamespace
        }

        /// A request that reached no cluster (no route, a local reply, a denial).
        public static let unknown = Destination(service: "unknown", serviceName: "unknown", serviceNamespace: "unknown")
    }

    static func exposition(_ state: RequestMetrics.State, source: Source,
                           destination: (String?) -> Destination) -> String {
        let sourceLabels = Self.sourceLabels(source)
        var labelsByCluster: [String?: String] = [:]
        func destinationLabels(_ cluster: String?) -> String {
            if let known = labelsByCluster[cluster] { return known }
            let made = Self.destinationLabels(destination(cluster))
            labelsByCluster[cluster] = made
            return made
        }
        var out = ""
        let requests = state.requests.map { (key: $0.key, series: $0.value,
                                             labels: labels(sourceLabels, destinationLabels($0.key.cluster), $0.key)) }
            .sorted { $0.labels < $1.labels }
        out += "# HELP istio_requests_total Requests, as Istio counts them.\n# TYPE istio_requests_total counter\n"
        for entry in requests { out += "istio_requests_total{\(entry.labels)} \(entry.series.count)\n" }
        out += histogram("istio_request_duration_milliseconds", help: "Request duration in milliseconds.",
                         requests.map { ($0.labels, $0.series.duration) })
        out += histogram("istio_request_bytes", help: "Request body sizes in bytes.",
                         requests.map { ($0.labels, $0.series.requestBytes) })
        out += histogram("istio_response_bytes", help: "Response body sizes in bytes.",
                         requests.map { ($0.labels, $0.series.responseBytes) })

        let tcp = state.tcp.map { (series: $0.value, labels: tcpLabels(sourceLabels, destinationLabels($0.key.cluster), $0.key)) }
            .sorted { $0.labels < $1.labels }
        for (name, help, value) in [
            ("istio_tcp_connections_opened_total", "TCP connections opened.", \RequestMetrics.TCPSeries.opened),
            ("istio_tcp_connections_closed_total", "TCP connections closed.", \RequestMetrics.TCPSeries.closed),
            ("istio_tcp_sent_bytes_total", "Bytes sent to clients on TCP connections.", \RequestMetrics.TCPSeries.sent),
            ("istio_tcp_received_bytes_total", "Bytes received from clients on TCP connections.",
             \RequestMetrics.TCPSeries.received),
        ] {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for entry in tcp { out += "\(name){\(entry.labels)} \(entry.series[keyPath: value])\n" }
        }
        return out
    }

    static func histogram(_ name: String, help: String, _ series: [(String, Histogram)]) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (labels, histogram) in series {
            var cumulative = 0
            for (index, bound) in histogram.bounds.enumerated() {
                cumulative += histogram.counts[index]
                out += "\(name)_bucket{\(labels),le=\"\(number(bound))\"} \(cumulative)\n"
            }
            cumulative += histogram.counts[histogram.bounds.count]
            out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
            out += "\(name)_sum{\(labels)} \(number(histogram.sum))\n"
            out += "\(name)_count{\(labels)} \(cumulative)\n"
        }
        return out
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func sourceLabels(_ source: Source) -> String {
        let canonical = source.labels["service.istio.io/canonical-name"] ?? source.labels["app.kubernetes.io/name"]
            ?? source.labels["app"] ?? source.workload
        let revision = source.labels["service.istio.io/canonical-revision"] ?? source.labels["app.kubernetes.io/version"]
            ?? source.labels["version"] ?? "latest"
        return pairs([
            ("reporter", "source"), ("source_workload", source.workload), ("source_canonical_service", canonical),
            ("source_canonical_revision", revision), ("source_workload_namespace", source.namespace),
            ("source_principal", source.principal), ("source_app", source.labels["app"] ?? "unknown"),
            ("source_version", source.labels["version"] ?? "unknown"), ("source_cluster", "unknown"),
        ])
    }

    /// Without mTLS metadata exchange with the upstream the gateway cannot know its workload: Istio's
    /// source reporter says `unknown` then too.
    static func destinationLabels(_ destination: Destination) -> String {
        pairs([
            ("destination_workload", "unknown"), ("destination_workload_namespace", "unknown"),
            ("destination_principal", "unknown"), ("destination_app", "unknown"), ("destination_version", "unknown"),
            ("destination_service", destination.service), ("destination_canonical_service", "unknown"),
            ("destination_canonical_revision", "latest"), ("destination_service_name", destination.serviceName),
            ("destination_service_namespace", destination.serviceNamespace), ("destination_cluster", "unknown"),
        ])
    }

    static func labels(_ source: String, _ destination: String, _ key: RequestMetrics.RequestKey) -> String {
        source + "," + destination + "," + pairs([
            ("request_protocol", key.grpc ? "grpc" : "http"), ("response_code", String(key.code)),
            ("grpc_response_status", key.grpcStatus ?? ""), ("response_flags", key.flags.description),
            ("connection_security_policy", "unknown"),
        ])
    }

    static func tcpLabels(_ source: String, _ destination: String, _ key: RequestMetrics.TCPKey) -> String {
        source + "," + destination + "," + pairs([
            ("request_protocol", "tcp"), ("response_flags", key.flags.description), ("connection_security_policy", "unknown"),
        ])
    }

    static func pairs(_ list: [(String, String)]) -> String {
        list.map { "\($0.0)=\"\(GatewayMetrics.escape($0.1))\"" }.joined(separator: ",")
    }
}
