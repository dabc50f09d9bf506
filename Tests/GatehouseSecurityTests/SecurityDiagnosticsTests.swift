import Testing
import GatehouseConfig
import GatehouseSnapshot

/// Every AuthorizationPolicy or RequestAuthentication input Istio refuses is an error at its line and field;
/// a value Istio accepts but that never matches is a warning there (a hole the author should hear about).
@Suite struct SecurityDiagnosticsTests {
    func policy(_ spec: String, annotations: String = "") -> String {
        """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: p, namespace: istio-system\(annotations)}
        spec:
        \(spec)
        """
    }

    /// The one error of `yaml`, printed as `validate` prints it.
    func onlyError(_ yaml: String) -> String {
        let found = errors(in: loadWithBase(yaml))
        #expect(found.count == 1, "\(found)")
        return found.first?.description ?? ""
    }

    @Test(arguments: [
        ("  rules: [{when: [{key: \"request.header[x-a]\", values: [a]}]}]",
         "test.yaml:5:25: AuthorizationPolicy istio-system/p: spec.rules[0].when[0].key: unknown condition key \"request.header[x-a]\" (did you mean \"request.headers[...]\"?)"),
        ("  rules: [{when: [{key: \"request.auth.claims[]\", values: [a]}]}]",
         "spec.rules[0].when[0].key: malformed condition key \"request.auth.claims[]\": empty or nested name in brackets"),
        ("  rules: [{when: [{key: source.ip, values: [10.0.0.300]}]}]",
         "spec.rules[0].when[0].values[0]: invalid IP address or CIDR \"10.0.0.300\" for source.ip"),
        ("  rules: [{when: [{key: destination.port, values: [\"http\"]}]}]",
         "spec.rules[0].when[0].values[0]: expected a port number (1-65535), got \"http\""),
        ("  rules: [{when: [{key: \"request.headers[x-a]\"}]}]", "spec.rules[0].when[0]: set values or notValues"),
        ("  rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]",
         "spec.rules[0].from[0].source.ipBlocks[0]: invalid IP address or CIDR \"10.0.0.0/33\""),
        ("  rules: [{from: [{source: {notRemoteIpBlocks: [\"::1/129\"]}}]}]",
         "spec.rules[0].from[0].source.notRemoteIpBlocks[0]: invalid IP address or CIDR \"::1/129\""),
        ("  rules: [{from: [{source: {namespaces: [a/b]}}]}]", "a namespace cannot contain \"/\""),
        ("  rules: [{from: [{source: {serviceAccounts: [\"ns/*\"]}}]}]", "serviceAccounts take no wildcards"),
        ("  rules: [{to: [{operation: {paths: [\"/a/{**}/{*}\"]}}]}]", "{**} must be the last operator of a path template"),
        ("  rules: [{to: [{operation: {ports: [\"70000\"]}}]}]", "expected a port number (1-65535), got \"70000\""),
        ("  rules: [{from: []}]", "spec.rules[0].from: from must not be empty"),
        ("  rules: [{to: [{}]}]", "spec.rules[0].to[0]: operation must set at least one field"),
        ("  action: DENY", "a DENY policy needs at least one rule (use rules: [{}] to match every request)"),
        ("  action: CUSTOM\n  provider: {name: ext}\n  rules: [{}]", "CUSTOM (external authorization) is not supported"),
        ("  action: ALLOW\n  provider: {name: ext}", "provider is only valid with action CUSTOM"),
        ("  action: REJECT", "unknown value \"REJECT\""),
        ("  selector: {matchLabels: {a: b}}\n  targetRefs: [{kind: Gateway, name: edge}]", "only one of selector, targetRef or targetRefs may be set"),
        ("  rules: [{to: [{operation: {pathz: [/a]}}]}]", "pathz"),
    ] as [(String, String)])
    func badPolicies(spec: String, expected: String) {
        let error = onlyError(policy(spec))
        #expect(error.contains(expected), "\(error)")
        #expect(error.hasPrefix("test.yaml:"), "every error names the file and line")
    }

    /// Values Istio accepts but that never match (or match literally what reads like a pattern) load, as in
    /// Istio, with a warning at their line saying what was probably meant; `validate --strict` refuses them.
    @Test(arguments: [
        ("  rules: [{from: [{source: {principals: [\"spiffe://cluster.local/ns/a/sa/b\"]}}]}]",
         "spec.rules[0].from[0].source.principals[0]: warning: \"spiffe://cluster.local/ns/a/sa/b\" never matches: Istio adds spiffe:// itself; write \"cluster.local/ns/a/sa/b\""),
        ("  rules: [{from: [{source: {principals: [cluster.local/default/sleep]}}]}]",
         "is not of the form <trust-domain>/ns/<namespace>/sa/<service-account>"),
        ("  rules: [{from: [{source: {requestPrincipals: [alice]}}]}]",
         "\"alice\" never matches: a request principal is <issuer>/<subject>"),
        ("  rules: [{to: [{operation: {paths: [\"/admin.*\"]}}]}]",
         "spec.rules[0].to[0].operation.paths[0]: warning: \"/admin.*\" looks like a regular expression"),
        ("  rules: [{to: [{operation: {paths: [\"^/admin$\"]}}]}]", "looks like a regular expression"),
        ("  rules: [{to: [{operation: {hosts: [\"api.*.com\"]}}]}]",
         "\"api.*.com\": * is a wildcard only as the first or the last character; this one is matched literally"),
        ("  rules: [{to: [{operation: {paths: [admin]}}]}]", "\"admin\" never matches: paths are compared with the normalized path, which starts with /; write \"/admin\""),
        ("  rules: [{to: [{operation: {methods: [get]}}]}]", "methods are case-sensitive: \"get\" never matches; write \"GET\""),
        ("  rules: [{when: [{key: \"request.headers[x-a]\", values: [\"a.*\"]}]}]", "looks like a regular expression"),
    ] as [(String, String)])
    func neverMatchingValuesLoadWithAWarning(spec: String, expected: String) {
        let diagnostics = loadWithBase(policy(spec))
        #expect(errors(in: diagnostics).isEmpty, "\(errors(in: diagnostics))")
        let warnings = diagnostics.filter { $0.severity == .warning }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.description.contains(expected) == true, "\(warnings)")
        #expect(warnings.first?.description.hasPrefix("test.yaml:") == true, "every warning names the file and line")
    }

    @Test func dryRunAndWaypointTargetsAreWarnings() {
        let diagnostics = loadWithBase(policy("  targetRefs: [{kind: Service, name: reviews}]", annotations: ", annotations: {istio.io/dry-run: \"true\"}"))
        #expect(errors(in: diagnostics).isEmpty)
        #expect(diagnostics.contains { $0.message.contains("dry-run policies are not evaluated") })
        #expect(diagnostics.contains { $0.message.contains("targetRef Service applies to waypoints") })
    }

    func authentication(_ rule: String) -> String {
        """
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt, namespace: istio-system}
        spec:
          jwtRules:
          - \(rule)
        """
    }

    @Test(arguments: [
        ("{issuer: i, jwks: \"not json\"}", "test.yaml:6:23: RequestAuthentication istio-system/jwt: spec.jwtRules[0].jwks: jwks does not parse: not a JSON object"),
        ("{issuer: i, jwks: '{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}'}", "jwks does not parse: no usable key (keys[0]: unsupported kty \"oct\")"),
        ("{issuer: i, jwks: '{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}'}", "invalid RSA key (2048 bits or more are required)"),
        ("{issuer: i}", "with neither jwks nor jwksUri the keys are found by OpenID discovery from the issuer, which needs an http(s) URL: \"i\" is not an http(s) URL"),
        ("{issuer: i, jwksUri: \"ftp://keys/jwks\", fromParams: [t]}", "unsupported scheme \"ftp\""),
        ("{issuer: i, jwksUri: \"file://relative.json\"}", "a file URI needs an absolute path"),
        ("{issuer: i, jwksUri: \"https://a/jwks\", jwks: \"{}\"}", "set jwks or jwksUri, not both"),
        ("{issuer: i, jwksUri: \"https://a/jwks\", fromHeaders: [{name: \"bad header\"}]}", "invalid header name \"bad header\""),
        ("{issuer: \"\", jwksUri: \"https://a/jwks\"}", "issuer must not be empty"),
        ("{issuer: i, jwksUri: \"https://a/jwks\", outputClaimToHeaders: [{header: x-a, claim: \"\"}]}", "claim must not be empty"),
    ] as [(String, String)])
    func badJWTRules(rule: String, expected: String) {
        let error = onlyError(authentication(rule))
        #expect(error.contains(expected), "\(error)")
    }

    @Test func hostWithoutPortInDenyGetsTheAdvisoryWarning() {
        let diagnostics = loadWithBase("""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-a, namespace: istio-system}
        spec:
          action: DENY
          rules:
          - to: [{operation: {hosts: [a.com, "b.com", "b.com:*", "c.com:8080"]}}]

        """)
        #expect(errors(in: diagnostics).isEmpty)
        let warnings = diagnostics.filter { $0.severity == .warning }
        #expect(warnings.map(\.path) == ["spec.rules[0].to[0].operation.hosts[0]"], "\(warnings)")
        #expect(warnings.first?.message.contains("a.com:*") == true)
        #expect(warnings.first?.message.contains("2021-008") == true)
    }

    /// The compiler builds from the same parse `validate` reports from: handed a policy value it cannot
    /// read, it refuses the whole config instead of compiling the rule without it (which, for a DENY
    /// on `ipBlocks`, would deny nothing).
    @Test func theCompilerRefusesWhatItCannotParseInsteadOfDroppingIt() throws {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: gatewayBase + "---\n" + policy("  action: DENY\n  rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]"),
                          file: "t.yaml", into: &set, diagnostics: &diagnostics)
        #expect(diagnostics.isEmpty, "the model itself is fine: \(diagnostics)")
        #expect(throws: ConfigRefused.self) { try SnapshotCompiler.compile(set, version: 1) }
    }
}
