import GatehouseConfig
import GatehouseRouting
import GatehouseSnapshot
import Testing

@Suite struct HostIndexTests {
    @Test func exactThenLongestWildcardThenAny() throws {
        let index = HostIndex([("a.example.com", "exact"), ("*.example.com", "short"), ("*.b.example.com", "long"),
                               ("*", "any")])
        #expect(index.lookup("a.example.com") == "exact")
        #expect(index.lookup("A.Example.com:8443") == "exact", "case and port do not matter")
        #expect(index.lookup("x.b.example.com") == "long")
        #expect(index.lookup("x.example.com") == "short")
        #expect(index.lookup("example.com") == "any", "*.example.com does not cover example.com itself")
        #expect(HostIndex([("a.test", 1)]).lookup("b.test") == nil)
    }
}

/// HTTPS servers compiled from a Gateway: one per server, picked by SNI, each with its own routes.
@Suite struct TLSServerSelectionTests {
    static let config = """
    apiVersion: gatehouse.dev/v1alpha1
    kind: Bootstrap
    metadata: {name: edge, namespace: istio-system}
    spec: {credentialsDir: /etc/creds}
    ---
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: edge, namespace: istio-system}
    spec:
      servers:
      - port: {number: 443, name: https-a, protocol: HTTPS}
        hosts: [a.example.com]
        tls: {mode: SIMPLE, credentialName: a-cert}
      - port: {number: 443, name: https-wild, protocol: HTTPS}
        hosts: ["*.example.com"]
        tls: {mode: MUTUAL, serverCertificate: /certs/w.crt, privateKey: /certs/w.key, caCertificates: /certs/ca.crt,
              minProtocolVersion: TLSV1_3, subjectAltNames: [spiffe://td/ns/x/sa/y]}
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs, namespace: istio-system}
    spec:
      hosts: ["*.example.com"]
      gateways: [edge]
      http:
      - directResponse: {status: 200}
    """

    func servers() throws -> TLSServers {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: Self.config, file: "t.yaml", into: &set, diagnostics: &diagnostics)
        diagnostics += ConfigValidator.validate(set)
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let snapshot = try SnapshotCompiler.compile(set, version: 1)
        return try #require(snapshot.listener(port: 443)?.tls)
    }

    @Test func sniPicksTheServerAndItsSettings() throws {
        let servers = try servers()
        let exact = try #require(servers.server(forSNI: "a.example.com"))
        #expect(exact.certificateChainPath == "/etc/creds/a-cert/tls.crt")
        #expect(exact.privateKeyPath == "/etc/creds/a-cert/tls.key")
        #expect(exact.clientCertificates == .none)
        #expect(exact.minimumVersion == .tls1_2, "Istio's default minimum")
        let wild = try #require(servers.server(forSNI: "b.example.com"))
        #expect(wild.clientCertificates == .required)
        #expect(wild.caCertificatesPaths == ["/certs/ca.crt"])
        #expect(wild.minimumVersion == .tls1_3)
        #expect(wild.subjectAltNames == ["spiffe://td/ns/x/sa/y"])
        #expect(servers.server(forSNI: "other.test") == nil, "no server: the handshake fails")
        #expect(servers.server(forSNI: nil)?.id == exact.id, "no SNI and no * server: the first server")
    }

    @Test func eachServerRoutesOnlyItsOwnHostsAndKnowsWhichHostsItServes() throws {
        let servers = try servers()
        let exact = try #require(servers.server(forSNI: "a.example.com"))
        #expect(exact.routes.virtualHosts.map(\.domain) == ["a.example.com"], "server hosts ∩ VirtualService hosts")
        #expect(exact.servesHost("a.example.com:443"))
        #expect(!exact.servesHost("b.example.com"), "a Host outside the SNI's server gets 421")
        let wild = try #require(servers.server(forSNI: "z.example.com"))
        #expect(wild.routes.virtualHosts.map(\.domain) == ["*.example.com"])
    }
}

@Suite struct TLSValidationTests {
    func diagnostics(_ tls: String) -> [Diagnostic] {
        let config = TLSServerSelectionTests.config.replacingOccurrences(
            of: "tls: {mode: SIMPLE, credentialName: a-cert}", with: "tls: \(tls)")
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: config, file: "t.yaml", into: &set, diagnostics: &diagnostics)
        return diagnostics + ConfigValidator.validate(set)
    }

    @Test(arguments: [
        ("{mode: ISTIO_MUTUAL}", "not supported"),
        ("{mode: SIMPLE}", "needs credentialName"),
        ("{mode: SIMPLE, credentialName: x, serverCertificate: a.crt, privateKey: a.key}", "not both"),
        ("{mode: SIMPLE, serverCertificate: a.crt}", "required with serverCertificate"),
        ("{mode: MUTUAL, serverCertificate: a.crt, privateKey: a.key}", "caCertificates"),
        ("{mode: SIMPLE, credentialName: x, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}", "below"),
        ("{mode: MUTUAL, credentialName: x, caCrl: crl.pem}", "not supported"),
        ("{mode: SIMPLE, credentialNames: [a, b]}", "only one credential"),
    ])
    func invalidTLSBlocksAreErrors(_ tls: String, _ expected: String) {
        let errors = diagnostics(tls).errors
        #expect(errors.contains { $0.path.hasPrefix("spec.servers[0].tls") && $0.message.contains(expected) },
                "\(tls): \(errors.map(\.description))")
    }

    @Test func modeUnsetIsIstiosPassthroughWithAWarning() throws {
        let diagnostics = diagnostics("{credentialName: x}")
        #expect(diagnostics.contains { $0.severity == .warning && $0.message.contains("PASSTHROUGH") })
        // The port's other server terminates TLS: one listener cannot do both.
        #expect(diagnostics.errors.map(\.message) == ["port 443 is already used by Gateway istio-system/edge for TLS passthrough, not TLS termination"])
    }

    @Test func validTLSBlockHasNoErrors() throws {
        #expect(!diagnostics("{mode: OPTIONAL_MUTUAL, credentialName: x}").hasErrors)
    }
}
