@testable import GatehouseTelemetry
import Testing

@Suite struct IstioMetricsTests {
    func record(cluster: String?, code: Int, millis: Int64, received: Int, sent: Int) -> AccessLogRecord {
        var record = AccessLogRecord()
        record.upstreamCluster = cluster
        record.responseCode = code
        record.durationMillis = millis
        record.bytesReceived = received
        record.bytesSent = sent
        return record
    }

    @Test func histogramsAreCumulativeWithAnInclusiveUpperBound() {
        var histogram = Histogram(bounds: [1, 10, 100])
        for value in [0.0, 1, 10, 11, 1000] { histogram.observe(value) }
        #expect(histogram.counts == [2, 1, 1, 1])
        let text = IstioMetrics.histogram("h", help: "x", [("a=\"b\"", histogram)])
        #expect(text.contains("h_bucket{a=\"b\",le=\"1\"} 2\n"))
        #expect(text.contains("h_bucket{a=\"b\",le=\"10\"} 3\n"))
        #expect(text.contains("h_bucket{a=\"b\",le=\"100\"} 4\n"))
        #expect(text.contains("h_bucket{a=\"b\",le=\"+Inf\"} 5\n"))
        #expect(text.contains("h_sum{a=\"b\"} 1022\n") && text.contains("h_count{a=\"b\"} 5\n"))
    }

    @Test func loopsAreSummedAndLabelledPerDestination() {
        let metrics = GatewayMetrics()
        let first = metrics.makeRequestMetrics()
        let second = metrics.makeRequestMetrics()
        var a = record(cluster: "outbound|80||api.shop.svc.cluster.local", code: 200, millis: 3, received: 0, sent: 512)
        var b = a
        var c = record(cluster: nil, code: 404, millis: 0, received: 0, sent: 9)
        c.responseFlags = .noRouteFound
        first.recordRequest(&a)
        second.recordRequest(&b)
        second.recordRequest(&c)
        let source = IstioMetrics.Source(workload: "edge", namespace: "istio-system", principal: "unknown", labels: [:])
        let text = metrics.prometheusText(activeConnections: 0, draining: false, istio: (source, { cluster in
            cluster == nil ? .unknown : IstioMetrics.Destination(service: "api.shop.svc.cluster.local", serviceName: "api",
                                                                 serviceNamespace: "shop")
        }))
        let totals = text.split(separator: "\n").filter { $0.hasPrefix("istio_requests_total{") }
        #expect(totals.count == 2)
        #expect(totals.contains { $0.contains("destination_service_name=\"api\"") && $0.contains("response_code=\"200\"") && $0.hasSuffix(" 2") })
        #expect(totals.contains { $0.contains("destination_service=\"unknown\"") && $0.contains("response_flags=\"NR\"") && $0.hasSuffix(" 1") })
        #expect(text.contains("# TYPE istio_request_duration_milliseconds histogram\n"))
        #expect(!GatewayMetrics().prometheusText(activeConnections: 0, draining: false).contains("istio_"))
    }
}
