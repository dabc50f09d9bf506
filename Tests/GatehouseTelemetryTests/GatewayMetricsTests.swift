import GatehouseTelemetry
import Testing

@Suite struct GatewayMetricsTests {
    @Test func everyEventIsExposedFromZeroAndCounts() {
        let metrics = GatewayMetrics()
        metrics.record(.http2Flood)
        metrics.record(.http2Flood)
        metrics.record(.idleTimeout)
        let text = metrics.prometheusText(activeConnections: 3, draining: false)
        #expect(text.contains("gatehouse_downstream_protection_events_total{event=\"http2_flood\"} 2\n"))
        #expect(text.contains("gatehouse_downstream_protection_events_total{event=\"idle_timeout\"} 1\n"))
        #expect(text.contains("gatehouse_downstream_protection_events_total{event=\"connection_limit\"} 0\n"))
        #expect(text.contains("gatehouse_downstream_connections_active 3\n"))
        #expect(text.contains("gatehouse_server_draining 0\n"))
        let series = text.split(separator: "\n").filter { $0.hasPrefix("gatehouse_downstream_protection_events_total{") }
        #expect(series.count == ProtectionEvent.allCases.count)
        #expect(metrics.count(.http2Flood) == 2)
    }

    @Test func theTextEndsWithANewlineAndDeclaresTypes() {
        let text = GatewayMetrics().prometheusText(activeConnections: 0, draining: true)
        #expect(text.hasSuffix("\n"))
        #expect(text.contains("# TYPE gatehouse_downstream_protection_events_total counter\n"))
        #expect(text.contains("gatehouse_server_draining 1\n"))
    }

    @Test func reloadsKeepTheServingVersionAndCountBothOutcomes() {
        let metrics = GatewayMetrics()
        metrics.recordInitialConfig(version: 1, at: 100)
        metrics.recordReload(appliedVersion: nil, at: 150)
        metrics.recordReload(appliedVersion: 3, at: 200)
        #expect(metrics.reloadStats == GatewayMetrics.ReloadStats(applied: 1, rejected: 1, version: 3, loadedAt: 200))
        metrics.recordReload(appliedVersion: nil, at: 250)
        #expect(metrics.reloadStats.version == 3 && metrics.reloadStats.loadedAt == 200, "a rejected reload changes nothing")
        let text = metrics.prometheusText(activeConnections: 0, draining: false, accessLog: (written: 5, dropped: 2))
        #expect(text.contains("gatehouse_config_reloads_total{result=\"applied\"} 1\n"))
        #expect(text.contains("gatehouse_config_reloads_total{result=\"rejected\"} 2\n"))
        #expect(text.contains("gatehouse_config_version 3\n"))
        #expect(text.contains("gatehouse_access_log_lines_total{outcome=\"dropped\"} 2\n"))
        #expect(!GatewayMetrics().prometheusText(activeConnections: 0, draining: false).contains("access_log"),
                "no access-log series when the log is off")
    }
}
