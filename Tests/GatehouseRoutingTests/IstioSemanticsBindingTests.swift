import GatehouseConfig
import GatehouseRouting
import GatehouseSnapshot
import Testing

/// Issue 13's Istio semantics at compile time: exportTo, sourceLabels/sourceNamespace, suffix matches,
/// Kubernetes service clusters and server hosts on passthrough servers.
@Suite struct IstioSemanticsBindingTests {
    let binding = SnapshotBindingTests()

    func vs(_ name: String, namespace: String = "istio-system", extra: String = "", http: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: \(name), namespace: \(namespace)}
        spec:
          hosts: ["*.example.com"]
          gateways: [istio-system/edge]
        \(extra)
          http: [\(http)]

        """
    }

    @Test func exportToDecidesWhetherTheGatewaySeesAVirtualService() throws {
        let snapshot = try binding.compile(
            vs("own-only", namespace: "apps", extra: "  exportTo: [\".\"]",
               http: "{name: hidden, match: [{uri: {prefix: /hidden}}], directResponse: {status: 200}}") + "---\n"
            + vs("to-gateway", namespace: "apps", extra: "  exportTo: [istio-system]",
                 http: "{name: shown, match: [{uri: {prefix: /shown}}], directResponse: {status: 200}}") + "---\n"
            + vs("local", extra: "  exportTo: [\".\"]",
                 http: "{name: local, match: [{uri: {prefix: /local}}], directResponse: {status: 200}}"))
        #expect(binding.routeName(snapshot, "a.example.com", "/hidden") == nil)
        #expect(binding.routeName(snapshot, "a.example.com", "/shown") == "shown")
        #expect(binding.routeName(snapshot, "a.example.com", "/local") == "local", "\".\" from the gateway's own namespace")
    }

    @Test func sourceLabelsAndNamespaceAreTheGatewaysOwn() throws {
        let snapshot = try binding.compile(vs("by-source", http: """
        {name: sidecars, match: [{sourceLabels: {app: reviews}}], directResponse: {status: 200}},
            {name: elsewhere, match: [{sourceNamespace: apps}], directResponse: {status: 200}},
            {name: named-gateway, match: [{gateways: [istio-system/edge], sourceLabels: {app: reviews}}], directResponse: {status: 200}}
        """))
        #expect(binding.routeName(snapshot, "a.example.com") == "named-gateway",
                "a match naming gateways ignores sourceLabels; the others are dropped as Istio drops them")
        let ours = try binding.compile(vs("ours", http: """
        {name: ours, match: [{sourceLabels: {istio: ingressgateway}, sourceNamespace: istio-system}], directResponse: {status: 200}}
        """))
        #expect(binding.routeName(ours, "a.example.com") == "ours")
    }

    @Test func suffixMatches() throws {
        let snapshot = try binding.compile(vs("suffix", http: """
        {name: png, match: [{uri: {suffix: .png}}], directResponse: {status: 200}},
            {name: internal, match: [{authority: {suffix: .internal.example.com}}], directResponse: {status: 200}}
        """))
        #expect(binding.routeName(snapshot, "a.example.com", "/img/logo.png") == "png")
        #expect(binding.routeName(snapshot, "api.internal.example.com", "/x") == "internal")
        #expect(binding.routeName(snapshot, "a.example.com", "/img/logo.png.txt") == nil)
    }

    @Test func kubernetesServicesBecomeDNSClustersNamedAsInIstio() throws {
        let snapshot = try binding.compile(vs("k8s", namespace: "bookinfo",
            http: "{name: pp, route: [{destination: {host: productpage, port: {number: 9080}}}]}"))
        let cluster = try #require(snapshot.clusters["outbound|9080||productpage.bookinfo.svc.cluster.local"])
        #expect(cluster.discovery == .kubernetesService)
        #expect(cluster.endpoints.map(\.description) == ["productpage.bookinfo.svc.cluster.local:9080"])
        #expect(cluster.serviceNamespace == "bookinfo")
    }

    @Test func passthroughServersTakeOnlyVirtualServicesMatchingTheirHosts() throws {
        let snapshot = try binding.compile("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: sni, namespace: istio-system}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 8443, name: tls, protocol: TLS}
            hosts: ["*.secure.example.com"]
            tls: {mode: PASSTHROUGH}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: inside, namespace: istio-system}
        spec:
          hosts: ["db.secure.example.com"]
          gateways: [sni]
          tls: [{match: [{sniHosts: [db.secure.example.com]}], route: [{destination: {host: backend.internal}}]}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: outside, namespace: istio-system}
        spec:
          hosts: ["other.org"]
          gateways: [sni]
          tls: [{match: [{sniHosts: [other.org]}], route: [{destination: {host: backend.internal}}]}]
        """)
        let routes = try #require(snapshot.listener(port: 8443)?.stream)
        #expect(routes.route(forSNI: "db.secure.example.com")?.name == "istio-system/inside tls[0]")
        #expect(routes.route(forSNI: "other.org") == nil, "other.org is not a host of the server")
    }
}
