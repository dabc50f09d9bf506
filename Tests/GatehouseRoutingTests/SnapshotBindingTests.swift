import GatehouseConfig
import GatehouseRouting
import GatehouseSnapshot
import Testing

/// How VirtualServices bind to Gateway servers when a snapshot is compiled (Istio's rules).
@Suite struct SnapshotBindingTests {
    static let base = """
    apiVersion: gatehouse.dev/v1alpha1
    kind: Bootstrap
    metadata: {name: edge, namespace: istio-system}
    spec: {labels: {istio: ingressgateway}}
    ---
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: edge, namespace: istio-system}
    spec:
      selector: {istio: ingressgateway}
      servers:
      - port: {number: 8080, name: http, protocol: HTTP}
        hosts: ["*.example.com", "team/*.team.com"]
    ---
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: other, namespace: istio-system}
    spec:
      selector: {istio: something-else}
      servers:
      - port: {number: 9090, name: http, protocol: HTTP}
        hosts: ["*"]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: backend, namespace: istio-system}
    spec:
      hosts: [backend.internal]
      ports: [{number: 80, name: http}]
      resolution: STATIC
      endpoints: [{address: 10.0.0.1, labels: {v: "1"}}, {address: 10.0.0.2, labels: {v: "2"}}]
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: backend, namespace: istio-system}
    spec:
      host: backend.internal
      subsets: [{name: v2, labels: {v: "2"}}]

    """

    func compile(_ extra: String) throws -> Snapshot {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: Self.base + "---\n" + extra, file: "t.yaml", into: &set, diagnostics: &diagnostics)
        diagnostics += ConfigValidator.validate(set)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        return try SnapshotCompiler.compile(set, version: 1)
    }

    func routeName(_ snapshot: Snapshot, _ authority: String, _ path: String = "/", port: Int = 8080) -> String? {
        try! snapshot.listener(port: port)?.routes.select(input(path, authority: authority, port: port))?.1?.route.name
    }

    @Test func onlyGatewaysSelectingThisGatewayAreServed() throws {
        let snapshot = try compile("")
        #expect(snapshot.listeners.map(\.port) == [8080])
    }

    @Test func virtualServiceWithoutGatewaysDoesNotBind() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: mesh-only, namespace: istio-system}
        spec:
          hosts: ["a.example.com"]
          http: [{name: r, directResponse: {status: 200}}]
        """)
        #expect(routeName(snapshot, "a.example.com") == nil)
    }

    @Test func hostsIntersectWithTheServerHosts() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: wide, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http: [{name: wide, directResponse: {status: 200}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: narrow, namespace: istio-system}
        spec:
          hosts: ["shop.example.com", "elsewhere.org"]
          gateways: [istio-system/edge]
          http: [{name: shop, directResponse: {status: 200}}]
        """)
        #expect(routeName(snapshot, "shop.example.com") == "shop")
        #expect(routeName(snapshot, "blog.example.com") == "wide", "* ∩ *.example.com = *.example.com")
        #expect(routeName(snapshot, "elsewhere.org") == nil, "not a host of the server")
        #expect(routeName(snapshot, "x.team.com") == nil, "team/ hosts only admit VirtualServices of namespace team")
    }

    @Test func namespaceQualifiedServerHostsAdmitTheirNamespace() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: team-backend, namespace: team}
        spec:
          hosts: [backend.team.internal]
          ports: [{number: 80, name: http}]
          resolution: STATIC
          endpoints: [{address: 10.0.1.1}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: team, namespace: team}
        spec:
          hosts: ["app.team.com"]
          gateways: [istio-system/edge]
          http: [{name: team, route: [{destination: {host: backend.team.internal}}]}]
        """)
        #expect(routeName(snapshot, "app.team.com") == "team")
        #expect(snapshot.clusters["outbound|80||backend.team.internal"]?.endpoints.map(\.address) == ["10.0.1.1"])
    }

    @Test func catchAllRoutesMoveBehindSpecificRoutesAcrossVirtualServices() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: a-catchall, namespace: istio-system}
        spec:
          hosts: ["app.example.com"]
          gateways: [edge]
          http: [{name: catchall, match: [{uri: {prefix: /}}], directResponse: {status: 200}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: b-api, namespace: istio-system}
        spec:
          hosts: ["app.example.com"]
          gateways: [edge]
          http: [{name: api, match: [{uri: {prefix: /api}}], directResponse: {status: 200}}]
        """)
        #expect(routeName(snapshot, "app.example.com", "/api/x") == "api")
        #expect(routeName(snapshot, "app.example.com", "/other") == "catchall")
    }

    @Test func matchGatewaysAndPortFilterEntriesPerGateway() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: filtered, namespace: istio-system}
        spec:
          hosts: ["app.example.com"]
          gateways: [edge]
          http:
          - {name: other-gw, match: [{gateways: [other], uri: {prefix: /}}], directResponse: {status: 200}}
          - {name: wrong-port, match: [{port: 9999}], directResponse: {status: 200}}
          - {name: right-port, match: [{port: 8080}], directResponse: {status: 200}}
        """)
        #expect(routeName(snapshot, "app.example.com") == "right-port")
    }

    @Test func clustersFollowSubsetsAndNaming() throws {
        let snapshot = try compile("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: split, namespace: istio-system}
        spec:
          hosts: ["app.example.com"]
          gateways: [edge]
          http:
          - name: split
            route:
            - {destination: {host: backend.internal, subset: v2}, weight: 10}
            - {destination: {host: backend.internal}, weight: 90}
        """)
        #expect(snapshot.clusters["outbound|80|v2|backend.internal"]?.endpoints.map(\.address) == ["10.0.0.2"])
        #expect(snapshot.clusters["outbound|80||backend.internal"]?.endpoints.map(\.address) == ["10.0.0.1", "10.0.0.2"])
    }
}
