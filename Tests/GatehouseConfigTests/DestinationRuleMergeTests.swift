import Testing
@testable import GatehouseConfig

/// Istio merges the DestinationRules of one host: the first `trafficPolicy` (in load order) and the first
/// definition of each subset win; what a later rule loses is a warning where it is written.
@Suite struct DestinationRuleMergeTests {
    func rule(_ name: String, _ body: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: \(name), namespace: istio-system}
        spec:
          host: backend.example.internal
        \(body.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        ---

        """
    }

    let routeToV2 = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: web, namespace: istio-system}
    spec:
      hosts: ["*"]
      gateways: [edge]
      http:
      - route: [{destination: {host: backend.example.internal, subset: v2}}]

    """

    @Test func subsetsOfEveryRuleAreFoundAndTheFirstPolicyWins() {
        let text = rule("subsets-a", "subsets: [{name: v1, labels: {version: v1}}]")
            + rule("policy-b", "trafficPolicy: {loadBalancer: {simple: RANDOM}}\nsubsets: [{name: v1, labels: {version: v2}}, {name: v2, labels: {version: v2}}]")
            + rule("policy-c", "trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}")
            + routeToV2
        let (set, diagnostics) = load(["base.yaml": bootstrapYAML + "---\n" + gatewayYAML + "---\n" + serviceEntryYAML, "test.yaml": text])
        #expect(errors(in: diagnostics).isEmpty, "a subset of the second rule is routable: \(diagnostics)")
        let warnings = diagnostics.filter { $0.severity == .warning }
        #expect(warnings.map(\.path).sorted() == ["spec.subsets[0]", "spec.trafficPolicy"], "\(warnings)")
        #expect(warnings.contains { $0.resource == "DestinationRule istio-system/policy-c" && $0.message.contains("policy-b") })
        #expect(warnings.contains { $0.resource == "DestinationRule istio-system/policy-b" && $0.message.contains("subsets-a") })
        let catalog = ServiceCatalog(set)
        #expect(catalog.destinationRule(for: "backend.example.internal", namespace: "istio-system")?.name == "policy-b")
        #expect(catalog.subset("v1", for: "backend.example.internal", namespace: "istio-system")?.rule.name == "subsets-a")
        #expect(catalog.subset("v2", for: "backend.example.internal", namespace: "istio-system")?.index == 1)
    }

    func namespaced(_ name: String, _ namespace: String, host: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: \(name), namespace: \(namespace)}
        spec:
          host: "\(host)"
          trafficPolicy: {loadBalancer: {simple: RANDOM}}
        ---

        """
    }

    let appsService = """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: api, namespace: apps}
    spec:
      hosts: [api.apps.example]
      ports: [{number: 80, name: http, protocol: HTTP}]
      resolution: STATIC
      endpoints: [{address: 127.0.0.1}]

    """

    func chosen(_ rules: String) -> String? {
        let (set, diagnostics) = load(["base.yaml": bootstrapYAML + "---\n" + gatewayYAML, "test.yaml": rules + appsService])
        #expect(errors(in: diagnostics).isEmpty, "\(diagnostics)")
        return ServiceCatalog(set).destinationRule(for: "api.apps.example", namespace: "apps")?.label
    }

    @Test func aWildcardHostAppliesAndTheMostSpecificHostWins() {
        #expect(chosen(namespaced("wide", "apps", host: "*.example")) == "DestinationRule apps/wide")
        #expect(chosen(namespaced("wide", "apps", host: "*.example") + namespaced("narrow", "apps", host: "*.apps.example"))
                == "DestinationRule apps/narrow")
        #expect(chosen(namespaced("narrow", "apps", host: "*.apps.example") + namespaced("exact", "apps", host: "api.apps.example"))
                == "DestinationRule apps/exact")
        #expect(chosen(namespaced("other", "apps", host: "*.other.example")) == nil)
    }

    @Test func theGatewaysNamespaceThenTheServicesThenTheRootAndNoOther() {
        // The gateway (its Bootstrap) is in istio-system, which is also the root namespace here.
        #expect(chosen(namespaced("service", "apps", host: "api.apps.example") + namespaced("gateway", "istio-system", host: "*.example"))
                == "DestinationRule istio-system/gateway", "the gateway's namespace first, even with a wider host")
        #expect(chosen(namespaced("service", "apps", host: "api.apps.example")) == "DestinationRule apps/service")
        #expect(chosen(namespaced("elsewhere", "team-b", host: "api.apps.example")) == nil,
                "a rule in a namespace that is neither the gateway's, the service's nor the root does not apply")
    }
}
