import Foundation
import Testing
@testable import GatehouseConfig

/// Config the gateway would not enforce, or would write onto the wire as a second message, is refused
/// at its file, line and field; bounded parsing refuses what would exhaust the loader.
@Suite struct FailClosedDiagnosticsTests {
    /// A VirtualService whose one http route is `action`, plus `route`'s extra fields (from line 9).
    func virtualService(route: String, action: String = "route: [{destination: {host: backend.example.internal}}]") -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - \(action)
        \(route.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))

        """
    }

    @Test(arguments: [
        ("retries: {attempts: 3, retryOn: retriable-headers}", "spec.http[0].retries.retryOn"),
        ("retries: {attempts: 3, retryOn: http3-post-connect-failure}", "spec.http[0].retries.retryOn"),
        ("fault: {abort: {http2Error: REFUSED_STREAM, percentage: {value: 10}}}", "spec.http[0].fault.abort.http2Error"),
        ("fault: {delay: {exponentialDelay: 1s, percentage: {value: 10}}}", "spec.http[0].fault.delay.exponentialDelay"),
    ])
    func unenforcedRouteFieldsAreErrors(_ field: String, _ path: String) {
        let diagnostics = errors(in: loadWithBase(virtualService(route: field)))
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.path == path)
        #expect(diagnostics.first?.message.contains("not supported") == true)
        #expect(diagnostics.first?.location.line == 9)
    }

    @Test func aFaultAbortWithAGRPCStatusNameLoadsAndAnythingElseIsRefused() {
        #expect(errors(in: loadWithBase(virtualService(route: "fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}}"))).isEmpty)
        let diagnostics = errors(in: loadWithBase(virtualService(route: "fault: {abort: {grpcStatus: \"14\", percentage: {value: 10}}}")))
        #expect(diagnostics.map(\.path) == ["spec.http[0].fault.abort.grpcStatus"], "\(diagnostics)")
    }

    @Test func mirrorsAsIstioWritesThemLoadAndMistakesAreRefused() {
        for mirror in ["mirror: {host: backend.example.internal}\nmirrorPercentage: {value: 25}",
                       "mirror: {host: backend.example.internal}\nmirrorPercent: 10",
                       "mirrors: [{destination: {host: backend.example.internal}, percentage: {value: 5}}]"] {
            #expect(errors(in: loadWithBase(virtualService(route: mirror))).isEmpty, "\(mirror)")
        }
        for (mirror, path) in [("mirrorPercentage: {value: 25}", "spec.http[0].mirrorPercentage"),
                               ("mirror: {host: backend.example.internal}\nmirrorPercentage: {value: 250}", "spec.http[0].mirrorPercentage.value"),
                               ("mirror: {host: backend.example.internal}\nmirrors: [{destination: {host: backend.example.internal}}]", "spec.http[0].mirrors"),
                               ("mirror: {host: nowhere.example}", "spec.http[0].mirror.host")] {
            let diagnostics = errors(in: loadWithBase(virtualService(route: mirror)))
            #expect(diagnostics.map(\.path) == [path], "\(mirror): \(diagnostics)")
        }
    }

    @Test func retriesAsIstioWritesThemLoad() {
        for retries in ["retries: {attempts: 0}", "retries: {attempts: 3, perTryTimeout: 2s, retryOn: \"gateway-error,connect-failure,refused-stream,503\"}",
                        "retries: {attempts: 2, retryOn: \"5xx,reset,retriable-4xx,envoy-ratelimited,unavailable,cancelled,deadline-exceeded,internal,resource-exhausted,reset-before-request\", backoff: 50ms, retryIgnorePreviousHosts: false}"] {
            #expect(errors(in: loadWithBase(virtualService(route: retries))).isEmpty, "\(retries)")
        }
    }

    @Test(arguments: [
        ("retries: {attempts: -1}", "spec.http[0].retries.attempts", "negative"),
        ("retries: {attempts: 2, perTryTimeout: 0s}", "spec.http[0].retries.perTryTimeout", "at least 1ms"),
        ("retries: {attempts: 2, backoff: 0.5ms}", "spec.http[0].retries.backoff", "at least 1ms"),
        ("retries: {attempts: 2, retryOn: \"5xx,gateway-eror\"}", "spec.http[0].retries.retryOn", "\"gateway-eror\" is not a valid retryOn policy"),
        ("retries: {attempts: 2, retryOn: \"599\"}", "spec.http[0].retries.retryOn", "\"599\" is not a valid retryOn policy"),
    ])
    func retriesIstioRefusesAreRefused(_ retries: String, _ path: String, _ message: String) {
        let diagnostics = errors(in: loadWithBase(virtualService(route: retries)))
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(diagnostics.first?.path == path)
        #expect(diagnostics.first?.message.contains(message) == true, "\(diagnostics)")
    }

    @Test(arguments: [
        ("tls: {mode: ISTIO_MUTUAL}", "spec.trafficPolicy.tls.mode"),
        ("tls: {mode: SIMPLE, clientCertificate: /c.pem}", "spec.trafficPolicy.tls.clientCertificate"),
        ("tls: {mode: MUTUAL, privateKey: /k.pem}", "spec.trafficPolicy.tls.clientCertificate"),
        ("tls: {mode: DISABLE, sni: api.example.com}", "spec.trafficPolicy.tls.sni"),
        ("tls: {mode: SIMPLE, sni: 10.0.0.1}", "spec.trafficPolicy.tls.sni"),
        ("tls: {mode: SIMPLE, caCrl: /crl.pem}", "spec.trafficPolicy.tls.caCrl"),
        ("tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}", "spec.trafficPolicy.tls.insecureSkipVerify"),
        ("portLevelSettings: [{loadBalancer: {simple: RANDOM}}]", "spec.trafficPolicy.portLevelSettings[0].port"),
        ("portLevelSettings: [{port: {number: 80}, tls: {mode: ISTIO_MUTUAL}}]", "spec.trafficPolicy.portLevelSettings[0].tls.mode"),
        ("portLevelSettings: [{port: {number: 80}}, {port: {number: 80}}]", "spec.trafficPolicy.portLevelSettings[1].port.number"),
        ("outlierDetection: {splitExternalLocalOriginErrors: true}", "spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors"),
        ("outlierDetection: {consecutiveLocalOriginFailures: 3}", "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures"),
        ("outlierDetection: {maxEjectionPercent: 150}", "spec.trafficPolicy.outlierDetection.maxEjectionPercent"),
        ("outlierDetection: {minHealthPercent: -1}", "spec.trafficPolicy.outlierDetection.minHealthPercent"),
        ("outlierDetection: {interval: 0s}", "spec.trafficPolicy.outlierDetection.interval"),
        ("connectionPool: {tcp: {maxConnections: -1}}", "spec.trafficPolicy.connectionPool.tcp.maxConnections"),
        ("connectionPool: {tcp: {tcpKeepalive: {time: 500ms}}}", "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time"),
        ("connectionPool: {tcp: {tcpKeepalive: {probes: 0}}}", "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes"),
        ("connectionPool: {http: {http1MaxPendingRequests: -1}}", "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests"),
        ("connectionPool: {http: {http2MaxRequests: -5}}", "spec.trafficPolicy.connectionPool.http.http2MaxRequests"),
        ("connectionPool: {http: {maxRetries: -3}}", "spec.trafficPolicy.connectionPool.http.maxRetries"),
        ("loadBalancer: {consistentHash: {httpCookie: {name: session}}}",
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie"),
        ("loadBalancer: {consistentHash: {httpCookie: {name: \"a b\", ttl: 0s}}}",
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name"),
        ("loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 1s, path: \"/a;b\"}}}",
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.path"),
        ("loadBalancer: {localityLbSetting: {failoverPriority: [version], failover: [{from: us-east, to: eu-west}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority"),
        ("loadBalancer: {localityLbSetting: {failoverPriority: [version], distribute: [{from: a, to: {b: 100}}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority"),
        ("loadBalancer: {localityLbSetting: {failoverPriority: [\"=v1\"]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]"),
        ("loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*, to: {us-east/*: 80}}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to"),
        ("loadBalancer: {localityLbSetting: {distribute: [{from: \"*/zone\", to: {us-east/*: 100}}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from"),
        ("loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-east}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]"),
        ("loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: eu-west}], distribute: [{from: a, to: {b: 100}}]}}",
         "spec.trafficPolicy.loadBalancer.localityLbSetting"),
        ("loadBalancer: {simple: PASSTHROUGH}", "spec.trafficPolicy.loadBalancer.simple"),
        ("loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}", "spec.trafficPolicy.loadBalancer"),
        ("loadBalancer: {consistentHash: {useSourceIp: false}}", "spec.trafficPolicy.loadBalancer.consistentHash"),
        ("loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIp: true}}", "spec.trafficPolicy.loadBalancer.consistentHash"),
        ("loadBalancer: {consistentHash: {httpHeaderName: \"x user\"}}", "spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName"),
        ("loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}",
         "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize"),
        ("loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 9000000}}}",
         "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize"),
        ("loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {}, maglev: {}}}", "spec.trafficPolicy.loadBalancer.consistentHash"),
    ])
    func unenforcedDestinationRuleFieldsAreErrors(_ policy: String, _ path: String) {
        let rule = destinationRule(policy)
        let diagnostics = errors(in: loadWithBase(rule + "---\n" + routeToBackend))
        #expect(diagnostics.map(\.path) == [path], "\(diagnostics)")
        #expect(diagnostics.first?.location.line == 7)
        // A rule for a host no gateway route reaches configures nothing here: Istio's own checks only.
        let (set, unreached) = load(["base.yaml": bootstrapYAML + "---\n" + gatewayYAML + "---\n" + serviceEntryYAML,
                                     "test.yaml": rule])
        #expect(errors(in: unreached).isEmpty, "\(unreached)")
        #expect(set.inapplicable.map(\.label) == ["DestinationRule istio-system/backend"])
    }

    let routeToBackend = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: web, namespace: istio-system}
    spec:
      hosts: ["*"]
      gateways: [edge]
      http:
      - route: [{destination: {host: backend.example.internal}}]

    """

    @Test(arguments: [
        "{simple: ROUND_ROBIN}", "{simple: LEAST_REQUEST}", "{simple: LEAST_CONN}", "{simple: RANDOM}",
        "{consistentHash: {httpHeaderName: x-user}}", "{consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 4096}}}",
        "{consistentHash: {httpQueryParameterName: user, maglev: {tableSize: 65537}}}",
        "{consistentHash: {httpHeaderName: x-user, minimumRingSize: 2048}}",
    ])
    func enforcedLoadBalancersLoad(_ balancer: String) {
        let diagnostics = loadWithBase(destinationRule("loadBalancer: \(balancer)") + "---\n" + routeToBackend)
        #expect(errors(in: diagnostics).isEmpty, "\(diagnostics)")
    }

    @Test(arguments: [
        "tls: {mode: SIMPLE}", "tls: {mode: DISABLE}", "tls: {mode: SIMPLE, sni: api.example.com, subjectAltNames: [api.example.com]}",
        "tls: {mode: SIMPLE, insecureSkipVerify: true}", "tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}",
        "tls: {mode: MUTUAL, credentialName: partner}",
        "portLevelSettings: [{port: {number: 80}, tls: {mode: SIMPLE}, loadBalancer: {simple: RANDOM}}]",
    ])
    func enforcedTLSSettingsLoad(_ policy: String) {
        let diagnostics = loadWithBase(destinationRule(policy) + "---\n" + routeToBackend)
        #expect(errors(in: diagnostics).isEmpty, "\(diagnostics)")
    }

    @Test func outlierDetectionLoadsAndItsDeprecatedCountIsAWarning() {
        let full = "outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: 5s, "
            + "maxEjectionPercent: 50, minHealthPercent: 20}"
        #expect(errors(in: loadWithBase(destinationRule(full) + "---\n" + routeToBackend)).isEmpty)
        let deprecated = loadWithBase(destinationRule("outlierDetection: {consecutiveErrors: 4}") + "---\n" + routeToBackend)
        #expect(errors(in: deprecated).isEmpty)
        #expect(deprecated.contains { $0.severity == .warning && $0.path == "spec.trafficPolicy.outlierDetection.consecutiveErrors" })
    }

    func destinationRule(_ policy: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: backend, namespace: istio-system}
        spec:
          host: backend.example.internal
          trafficPolicy:
            \(policy)

        """
    }

    @Test func appliedConnectionPoolSettingsLoad() {
        // Routed to, so the gateway's own checks apply to the rule, not only Istio's.
        let pool = "connectionPool: {tcp: {connectTimeout: 2s}, http: {idleTimeout: 30s, http2MaxRequests: 100, http1MaxPendingRequests: 10}}"
        let diagnostics = loadWithBase(destinationRule(pool) + "---\n" + routeToBackend)
        #expect(errors(in: diagnostics).isEmpty, "\(diagnostics)")
    }

    @Test(arguments: [
        ("rewrite: {uri: \"/a\\r\\nx-injected: 1\"}", "spec.http[0].rewrite.uri", "CR"),
        ("rewrite: {uri: \"/a b\"}", "spec.http[0].rewrite.uri", "a space"),
        ("rewrite: {authority: \"a.example\\r\\nx: 1\"}", "spec.http[0].rewrite.authority", "CR"),
        ("rewrite: {authority: \"a.example/b\"}", "spec.http[0].rewrite.authority", "authority"),
        ("headers: {request: {set: {x-a: \"v\\u0001\"}}}", "spec.http[0].headers.request", "0x1"),
    ])
    func valuesWrittenOnTheWireAreChecked(_ field: String, _ path: String, _ words: String) {
        let diagnostics = errors(in: loadWithBase(virtualService(route: field)))
        #expect(diagnostics.map(\.path) == [path], "\(diagnostics)")
        #expect(diagnostics.first?.message.contains(words) == true, "\(diagnostics)")
    }

    @Test(arguments: [("uri", "\"/a\\nb\""), ("authority", "\"a\\r\\nb\"")])
    func redirectValuesAreChecked(_ field: String, _ value: String) {
        let diagnostics = errors(in: loadWithBase(virtualService(route: "", action: "redirect: {\(field): \(value)}")))
        #expect(diagnostics.map(\.path) == ["spec.http[0].redirect.\(field)"], "\(diagnostics)")
    }

    @Test func nestedQuantifierRegexGetsAWarning() {
        let diagnostics = loadWithBase(virtualService(route: "match: [{uri: {regex: \"/(a+)+b\"}}]"))
        #expect(errors(in: diagnostics).isEmpty)
        let warning = try! #require(diagnostics.first { $0.severity == .warning })
        #expect(warning.path == "spec.http[0].match[0].uri.regex")
        #expect(warning.message.contains("nested quantifiers"))
    }
}

@Suite struct BoundedYAMLTests {
    @Test func aliasBombIsAnErrorAtItsLineAndFast() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        let names = "bcdefghij".map(String.init)
        var previous = "a"
        for name in names {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
            previous = name
        }
        let started = Date()
        let (_, diagnostics) = load(["bomb.yaml": text])
        #expect(Date().timeIntervalSince(started) < 5, "an alias bomb must not expand")
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.file == "bomb.yaml")
        #expect((5...10).contains(error.location.line), "the line where the budget ran out: \(error)")
        #expect(error.message.contains("alias"))
    }

    @Test func ordinaryAnchorsStillWork() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - match: [{uri: {prefix: /a}}]
            route: &to-backend [{destination: {host: backend.example.internal}}]
          - route: *to-backend

        """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
    }

    @Test func deepNestingIsRefused() {
        let depth = YAMLLimits.maxDepth + 5
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let error = try! #require(errors(in: load(["deep.yaml": text]).1).first)
        #expect(error.message.contains("nest"))
    }

    @Test func duplicateKeysAndUnknownAliasesAreSyntaxErrors() {
        let duplicate = errors(in: load(["d.yaml": "kind: A\nkind: B\n"]).1)
        #expect(duplicate.first?.message.contains("duplicate key \"kind\"") == true)
        #expect(duplicate.first?.location.line == 2)
        let unknown = errors(in: load(["u.yaml": "a: *nothing\n"]).1)
        #expect(unknown.first?.message.contains("unknown alias") == true)
    }

    @Test func oversizedFileIsRefusedUnread() {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        let text = String(repeating: "#", count: YAMLLimits.maxFileBytes + 1)
        ConfigLoader.load(text: text, file: "big.yaml", into: &set, diagnostics: &diagnostics)
        #expect(diagnostics.first?.message.contains("\(YAMLLimits.maxFileBytes)") == true)
    }
}
