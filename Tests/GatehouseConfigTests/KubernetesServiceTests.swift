import Foundation
import Testing
@testable import GatehouseConfig

/// Destination hosts no ServiceEntry declares but shaped like Kubernetes services resolve through DNS,
/// expanded as Istio expands them; everything else stays "unknown host".
@Suite struct KubernetesServiceTests {
    func catalog(_ bootstrapExtra: String = "", extra: String = "") -> ServiceCatalog {
        let bootstrap = """
        apiVersion: gatehouse.dev/v1alpha1
        kind: Bootstrap
        metadata: {name: edge, namespace: istio-system}
        spec:
          labels: {app: edge}
        \(bootstrapExtra)
        """
        return ServiceCatalog(load(["a.yaml": bootstrap + "\n---\n" + serviceEntryYAML, "b.yaml": extra]).0)
    }

    @Test func shapesAndExpansion() {
        let names = catalog(extra: """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: v, namespace: bookinfo}
        spec: {hosts: [x], http: [{directResponse: {status: 200}}]}
        """)
        #expect(names.kubernetesService(for: "reviews", namespace: "default") == "reviews.default.svc.cluster.local")
        #expect(names.kubernetesService(for: "Reviews.Bookinfo", namespace: "default") == "reviews.bookinfo.svc.cluster.local",
                "NAME.NAMESPACE for a namespace resources live in")
        #expect(names.kubernetesService(for: "reviews.default", namespace: "default") == "reviews.default.svc.cluster.local")
        #expect(names.kubernetesService(for: "example.com", namespace: "default") == nil, "com is no namespace")
        #expect(names.kubernetesService(for: "reviews.bookinfo.svc.cluster.local", namespace: "x")
                == "reviews.bookinfo.svc.cluster.local")
        #expect(names.kubernetesService(for: "a.b.svc.other.domain", namespace: "x") == nil)
        #expect(names.kubernetesService(for: "10.0.0.1", namespace: "x") == nil)
        #expect(names.kubernetesService(for: "*.svc.cluster.local", namespace: "x") == nil)
        #expect(names.kubernetesService(for: "backend.example.internal", namespace: "istio-system") == nil,
                "a ServiceEntry host is the ServiceEntry's")
    }

    @Test func clusterDomainAndTheSwitch() {
        let custom = catalog("  clusterDomain: corp.internal")
        #expect(custom.kubernetesService(for: "reviews", namespace: "default") == "reviews.default.svc.corp.internal")
        #expect(custom.kubernetesService(for: "reviews.default.svc.cluster.local", namespace: "default") == nil)
        let off = catalog("  dns: {kubernetesServices: false}")
        #expect(off.kubernetesService(for: "reviews", namespace: "default") == nil)
    }

    func route(_ destination: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: default}
        spec:
          hosts: ["*"]
          gateways: [istio-system/edge]
          http:
          - route: [{destination: \(destination)}]
        """
    }

    @Test func aServiceNameLoadsWithAPortAndWithoutASubset() {
        #expect(errors(in: loadWithBase(route("{host: productpage, port: {number: 9080}}"))).isEmpty)
        let noPort = errors(in: loadWithBase(route("{host: productpage}")))
        #expect(noPort.map(\.path) == ["spec.http[0].route[0].destination.port"], "\(noPort)")
        #expect(noPort.first?.message.contains("productpage.default.svc.cluster.local, resolved through DNS") == true)
        let subset = errors(in: loadWithBase(route("{host: productpage, subset: v1, port: {number: 9080}}")))
        #expect(subset.map(\.path) == ["spec.http[0].route[0].destination.subset"], "\(subset)")
        let external = errors(in: loadWithBase(route("{host: api.example.com, port: {number: 443}}")))
        #expect(external.first?.message.contains("no ServiceEntry declares it") == true, "\(external)")
    }
}

/// Fields Istio enforces at a gateway that this build refuses, or accepts as Istio does.
@Suite struct IstioFieldCoverageTests {
    @Test func exportToValuesAreChecked() {
        let bad = errors(in: loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: x, namespace: istio-system}
        spec:
          hosts: [x.example]
          ports: [{number: 80, name: http}]
          resolution: DNS
          exportTo: ["~", "."]
        """))
        #expect(bad.map(\.message) == ["\"~\" (export to no namespace) cannot be combined with other values"])
    }

    @Test func tlsOnATCPServerAndTwoBindsOnAPortAreRefused() {
        let found = errors(in: loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: tcp, namespace: istio-system}
        spec:
          servers:
          - port: {number: 9000, name: tcp, protocol: TCP}
            hosts: ["*"]
            tls: {mode: SIMPLE, credentialName: x}
          - port: {number: 9001, name: a, protocol: HTTP}
            bind: 127.0.0.1
            hosts: ["a.example"]
          - port: {number: 9001, name: b, protocol: HTTP}
            bind: 127.0.0.2
            hosts: ["b.example"]
        """))
        #expect(found.map(\.path) == ["spec.servers[0].tls", "spec.servers[2].bind"], "\(found)")
    }

    @Test func endpointWeightAndNetworkAreRefusedWhereAGatewayRouteReachesThem() {
        let entry = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: weighted, namespace: istio-system}
        spec:
          hosts: [weighted.example]
          ports: [{number: 80, name: http}]
          resolution: STATIC
          endpoints: [{address: 10.0.0.1, weight: 3}, {address: 10.0.0.2, network: east}]

        """
        #expect(errors(in: loadWithBase(entry)).isEmpty, "no gateway route reaches it: Istio's checks only")
        let routed = errors(in: loadWithBase(entry + """
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http: [{route: [{destination: {host: weighted.example}}]}]
        """))
        #expect(routed.map(\.path) == ["spec.endpoints[0].weight", "spec.endpoints[1].network"], "\(routed)")
    }

    @Test func aWorkloadEntryOnAnotherNetworkMayOmitItsAddress() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: remote, namespace: istio-system}
        spec: {network: east, labels: {app: x}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: nowhere, namespace: istio-system}
        spec: {labels: {app: x}}
        """)
        #expect(errors(in: diagnostics).map(\.resource) == ["WorkloadEntry istio-system/nowhere"])
    }

    @Test func newerIstioFieldsAreNamedForWhatTheyAre() {
        let found = errors(in: loadWithBase("""
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt, namespace: istio-system}
        spec:
          jwtRules: [{issuer: "https://idp.example", presence: REQUIRED}]
        """))
        #expect(found.first?.message.hasPrefix("presence is a field of Istio's API this version of Gatehouse does not implement yet") == true,
                "\(found)")
    }
}

@Suite struct BootstrapDiscoverySettingsTests {
    func bootstrap(_ extra: String) -> [Diagnostic] {
        errors(in: load(["a.yaml": """
        apiVersion: gatehouse.dev/v1alpha1
        kind: Bootstrap
        metadata: {name: edge, namespace: istio-system}
        spec:
        \(extra)
        """]).1)
    }

    @Test func badResolversDomainsAndRootBundlesAreErrorsAtTheirField() {
        #expect(bootstrap("  dns: {resolvers: [dns.example, \"10.0.0.1:53\"]}").map(\.path) == ["spec.dns.resolvers[0]"])
        #expect(bootstrap("  clusterDomain: \"*.local\"").map(\.path) == ["spec.clusterDomain"])
        let missing = bootstrap("  jwksRootCerts: /nonexistent/ca.pem")
        #expect(missing.map(\.path) == ["spec.jwksRootCerts"])
        #expect(missing.first?.message.contains("cannot read /nonexistent/ca.pem") == true, "\(missing)")
        let notPEM = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-not-pem-\(getpid()).txt").path
        #expect(FileManager.default.createFile(atPath: notPEM, contents: Data("hello".utf8)))
        defer { try? FileManager.default.removeItem(atPath: notPEM) }
        #expect(bootstrap("  jwksRootCerts: \(notPEM)").first?.message.hasSuffix("holds no PEM certificate") == true)
    }
}
