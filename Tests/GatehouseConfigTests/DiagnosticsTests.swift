import Testing
@testable import GatehouseConfig

/// One test per kind of configuration error: each asserts the file, line, column, resource, field path
/// and message, as `gatehouse validate` prints them.
@Suite struct DiagnosticsTests {
    @Test func validBaseConfigHasNoDiagnostics() {
        let diagnostics = loadWithBase("")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
    }

    @Test func yamlSyntaxErrorNamesFileAndLine() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: bad
        spec: {}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.file == "test.yaml")
        #expect(error.location.line == 4)
        #expect(error.resource == "YAML")
        #expect(error.message.hasPrefix("syntax error"))
    }

    @Test func unknownKindIsAnErrorWithAHint() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualServce
        metadata: {name: x}
        spec: {}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.description == #"test.yaml:2:7: VirtualServce default/x: kind: unknown kind "VirtualServce" (did you mean "VirtualService"?)"#)
    }

    @Test func unknownFieldIsReportedWithDidYouMean() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - matches:
            - uri: {prefix: /}
            directResponse: {status: 200}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.description
            == #"test.yaml:8:5: VirtualService istio-system/web: spec.http[0].matches: unknown field "matches" (did you mean "match"?)"#)
    }

    @Test func wrongTypeNamesTheField() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - directResponse:
              status: ok
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 9)
        #expect(error.location.column == 15)
        #expect(error.path == "spec.http[0].directResponse.status")
        #expect(error.message == #"expected an integer, got "ok""#)
    }

    @Test func missingRequiredFieldPointsAtTheParent() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - route:
            - destination: {port: {number: 8000}}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 9)
        #expect(error.path == "spec.http[0].route[0].destination")
        #expect(error.message == #"missing required field "host""#)
    }

    @Test func invalidRegexIsRejectedAtItsLine() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - match:
            - uri: {regex: "/api/(v1"}
            directResponse: {status: 200}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 9)
        #expect(error.path == "spec.http[0].match[0].uri.regex")
        #expect(error.message.contains("invalid regex"))
    }

    @Test func lookaroundIsRejectedAsNotRE2() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - match:
            - headers: {x-user: {regex: "(?!admin).*"}}
            directResponse: {status: 200}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.path == "spec.http[0].match[0].headers.x-user.regex")
        #expect(error.message.contains("lookaround"))
    }

    @Test func badDurationIsRejected() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - timeout: 5 seconds
            route: [{destination: {host: backend.example.internal}}]
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 8)
        #expect(error.path == "spec.http[0].timeout")
        #expect(error.message.hasPrefix(#"invalid duration "5 seconds""#))
    }

    @Test func durationsInIstioFormsParse() throws {
        #expect(try ConfigDuration.parse("1.5s").get().nanoseconds == 1_500_000_000)
        #expect(try ConfigDuration.parse("100ms").get().nanoseconds == 100_000_000)
        #expect(try ConfigDuration.parse("1h").get().nanoseconds == 3_600_000_000_000)
        #expect(try ConfigDuration.parse("1m30s").get().nanoseconds == 90_000_000_000)
        #expect(try ConfigDuration.parse("0").get().nanoseconds == 0)
        for bad in ["", "5", "-1s", "1.5", "10 s", "1d", "s"] {
            #expect(throws: ConfigDuration.ParseProblem.self, "\(bad)") { try ConfigDuration.parse(bad).get() }
        }
    }

    @Test func weightsMustSumTo100() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - route:
            - destination: {host: backend.example.internal}
              weight: 60
            - destination: {host: backend.example.internal}
              weight: 30
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 9)
        #expect(error.path == "spec.http[0].route")
        #expect(error.message == "destination weights sum to 90, they must sum to 100")
    }

    @Test func unknownGatewayIsReportedWithHint() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edgee]
          http:
          - directResponse: {status: 200}
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 6)
        #expect(error.path == "spec.gateways[0]")
        #expect(error.message == #"unknown gateway "istio-system/edgee" (did you mean "istio-system/edge"?)"#)
    }

    @Test func unknownHostAndSubsetAreReported() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: backend, namespace: istio-system}
        spec:
          host: backend.example.internal
          subsets:
          - {name: v1, labels: {version: v1}}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - route:
            - destination: {host: backend.example.internal, subset: v3}
          - route:
            - destination: {host: missing.example}
        """)
        let found = errors(in: diagnostics)
        #expect(found.count == 2, "\(found)")
        let subset = try! #require(found.first { $0.path.hasSuffix("subset") })
        #expect(subset.location.line == 17)
        #expect(subset.message.hasPrefix(#"unknown subset "v3""#))
        let host = try! #require(found.first { $0.path.hasSuffix("host") })
        #expect(host.location.line == 19)
        #expect(host.message.hasPrefix(#"unknown host "missing.example": no ServiceEntry declares it"#))
    }

    @Test func duplicateNamesAreReported() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: edge, namespace: istio-system}
        spec:
          servers:
          - port: {number: 9090, name: http, protocol: HTTP}
            hosts: ["*"]
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.file == "test.yaml")
        #expect(error.location.line == 3)
        #expect(error.message.hasPrefix("duplicate name: Gateway istio-system/edge is already defined at base.yaml:"))
    }

    @Test func unknownEnumValueListsTheAcceptedOnes() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: other, namespace: istio-system}
        spec:
          hosts: [other.example]
          ports: [{number: 80, name: http}]
          resolution: STATC
        """)
        let error = try! #require(errors(in: diagnostics).first)
        #expect(error.location.line == 7)
        #expect(error.message.hasPrefix(#"unknown value "STATC" (did you mean "STATIC"?)"#))
    }

    @Test func everyProblemInADocumentIsReported() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          gateways: [edge]
          http:
          - timeout: soon
            route: [{destination: {host: backend.example.internal}}]
          - directResponse: {status: nope}
          - directResponse: {status: 200}
            colour: blue
        """)
        let lines = errors(in: diagnostics).map(\.location.line).sorted()
        #expect(lines == [8, 10, 12], "\(diagnostics)")
    }

    @Test func unsupportedKindsAreRefusedNotIgnored() throws {
        let diagnostics = loadWithBase("""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: mesh-default, namespace: istio-system}
        spec: {accessLogging: [{providers: [{name: envoy}]}]}
        """)
        let error = try #require(errors(in: diagnostics).first)
        #expect(error.message.contains("Telemetry is not supported"))
    }

    /// Kinds Istio applies to sidecars only load and are listed; Kubernetes kinds are counted and skipped;
    /// what would configure an Istio gateway (the Gateway API, an istio-class Ingress) stays an error.
    @Test func kindsThatDoNotConfigureAGatewayAreListed() {
        let (set, diagnostics) = load(["base.yaml": bootstrapYAML + "---\n" + gatewayYAML, "mixed.yaml": """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: strict, namespace: istio-system}
        spec: {mtls: {mode: STRICT}}
        ---
        apiVersion: networking.istio.io/v1
        kind: Sidecar
        metadata: {name: default, namespace: apps}
        spec: {egress: [{hosts: ["./*"]}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec: {ports: [{port: 80}]}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: other, annotations: {kubernetes.io/ingress.class: nginx}}
        spec: {}
        """])
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(set.inapplicable.map(\.label) == ["PeerAuthentication istio-system/strict", "Sidecar apps/default"])
        #expect(set.inapplicable.first?.location.line == 1)
        #expect(set.skippedKubernetes == ["Service": 1, "Deployment": 1, "Ingress": 1])

        let (_, refused) = load(["base.yaml": bootstrapYAML, "route.yaml": """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r}
        spec: {}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: i}
        spec: {ingressClassName: istio}
        """])
        #expect(errors(in: refused).map(\.location.line) == [1, 6], "\(refused)")

        // An Istio kind under a misspelt group is an error at its apiVersion, never a skipped resource.
        let (typo, typoDiagnostics) = load(["base.yaml": bootstrapYAML, "typo.yaml": """
        apiVersion: networking.istio.oi/v1
        kind: VirtualService
        metadata: {name: v}
        spec: {hosts: [x]}
        """])
        #expect(typo.skippedKubernetes.isEmpty)
        #expect(errors(in: typoDiagnostics).map(\.path) == ["apiVersion"], "\(typoDiagnostics)")
    }

    @Test func missingBootstrapIsAnError() {
        let (_, diagnostics) = load(["only.yaml": gatewayYAML])
        #expect(errors(in: diagnostics).contains { $0.resource == "Bootstrap" && $0.message.contains("exactly one") })
    }

    @Test func virtualServiceWithoutGatewaysIsListedAsMeshOnly() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: istio-system}
        spec:
          hosts: ["*"]
          http:
          - directResponse: {status: 200}
        """)
        #expect(diagnostics.isEmpty, "a mesh-only VirtualService is Istio's normal case, not a mistake")
    }

    @Test func kubectlExportMetadataIsAccepted() {
        let diagnostics = loadWithBase("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: exported
          namespace: istio-system
          uid: 1234
          resourceVersion: "99"
          creationTimestamp: "2026-01-01T00:00:00Z"
        spec:
          hosts: [exported.example]
          ports: [{number: 80, name: http}]
          resolution: DNS
        status: {}
        """)
        #expect(errors(in: diagnostics).isEmpty, "\(diagnostics)")
    }
}
