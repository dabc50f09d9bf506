import Testing
@testable import GatehouseConfig

/// Istio's MergeTrafficPolicy: subset sections replace the rule's one by one; a port's settings replace
/// all four sections of their level, without inheriting what they omit.
@Suite struct ClusterTrafficPolicyTests {
    func policy(_ simple: LoadBalancerSettings.Simple?, tls: ClientTLSSettings.Mode? = nil, ports: [PortTrafficPolicy]? = nil) -> TrafficPolicy {
        TrafficPolicy(loadBalancer: simple.map { LoadBalancerSettings(simple: $0) }, connectionPool: nil, outlierDetection: nil,
                      tls: tls.map { ClientTLSSettings(mode: $0) }, portLevelSettings: ports)
    }

    func port(_ number: UInt32, _ simple: LoadBalancerSettings.Simple? = nil, tls: ClientTLSSettings.Mode? = nil) -> PortTrafficPolicy {
        PortTrafficPolicy(port: .init(number: number), loadBalancer: simple.map { LoadBalancerSettings(simple: $0) },
                          tls: tls.map { ClientTLSSettings(mode: $0) })
    }

    @Test func subsetSectionsReplaceTheRulesOneByOne() {
        let merged = ClusterTrafficPolicy.merged(rule: policy(.RANDOM, tls: .SIMPLE), subset: policy(.ROUND_ROBIN),
                                                 subsetPath: "spec.subsets[1].trafficPolicy", port: 80)
        #expect(merged.loadBalancer?.simple == .ROUND_ROBIN)
        #expect(merged.tls?.mode == .SIMPLE)
        #expect(merged.tlsPath == "spec.trafficPolicy.tls")
    }

    @Test func aPortsSettingsReplaceEverySectionAndOmittedOnesAreDefaults() {
        let rule = policy(.RANDOM, tls: .SIMPLE, ports: [port(443, tls: .MUTUAL), port(8080, .LEAST_REQUEST)])
        let on8080 = ClusterTrafficPolicy.merged(rule: rule, subset: nil, port: 8080)
        #expect(on8080.loadBalancer?.simple == .LEAST_REQUEST)
        #expect(on8080.tls == nil, "the port's settings do not inherit the rule's tls")
        let on443 = ClusterTrafficPolicy.merged(rule: rule, subset: nil, port: 443)
        #expect(on443.tls?.mode == .MUTUAL && on443.loadBalancer == nil)
        #expect(on443.tlsPath == "spec.trafficPolicy.portLevelSettings[0].tls")
        let elsewhere = ClusterTrafficPolicy.merged(rule: rule, subset: nil, port: 9000)
        #expect(elsewhere.loadBalancer?.simple == .RANDOM && elsewhere.tls?.mode == .SIMPLE)
    }

    @Test func aSubsetsPortSettingsWinOverEverything() {
        let rule = policy(.RANDOM, tls: .SIMPLE, ports: [port(80, .LEAST_REQUEST)])
        let subset = policy(.ROUND_ROBIN, ports: [port(80, tls: .ISTIO_MUTUAL)])
        let merged = ClusterTrafficPolicy.merged(rule: rule, subset: subset, subsetPath: "spec.subsets[0].trafficPolicy", port: 80)
        #expect(merged.loadBalancer == nil && merged.tls?.mode == .ISTIO_MUTUAL)
        #expect(merged.tlsPath == "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls")
        let otherPort = ClusterTrafficPolicy.merged(rule: rule, subset: subset, subsetPath: "spec.subsets[0].trafficPolicy", port: 81)
        #expect(otherPort.loadBalancer?.simple == .ROUND_ROBIN && otherPort.tls?.mode == .SIMPLE)
    }
}
