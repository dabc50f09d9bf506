import Foundation
import GatehouseConfig
import GatehouseSecurity
import GatehouseSnapshot
import Testing

struct Headers: HeaderValues, Sendable {
    var pairs: [(String, String)]
    init(_ pairs: [(String, String)] = []) { self.pairs = pairs }
    func values(_ name: String) -> [String] { pairs.filter { $0.0.lowercased() == name }.map(\.1) }
}

/// The gateway every test compiles for: Bootstrap `istio-system/edge` with label istio=ingressgateway,
/// plain HTTP on 8080 and 9090.
let gatewayBase = """
apiVersion: gatehouse.dev/v1alpha1
kind: Bootstrap
metadata: {name: edge, namespace: istio-system}
spec: {labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 9090, name: http-alt, protocol: HTTP}
    hosts: ["*"]

"""

func compileSnapshot(_ documents: String) throws -> Snapshot {
    var set = ConfigSet()
    var diagnostics: [Diagnostic] = []
    ConfigLoader.load(text: gatewayBase + "---\n" + documents, file: "t.yaml", into: &set, diagnostics: &diagnostics)
    diagnostics += ConfigValidator.validate(set)
    let loaded = ConfigPipeline.checked(set, diagnostics: diagnostics)
    #expect(loaded.diagnostics.errors.isEmpty, "\(loaded.diagnostics.errors)")
    return try SnapshotCompiler.compile(loaded, version: 1)
}

/// Every diagnostic of `documents` in a file `test.yaml` next to the base gateway (in `base.yaml`): the
/// model's checks and the security parse, as `validate` runs them.
func loadWithBase(_ documents: String) -> [Diagnostic] {
    var set = ConfigSet()
    var diagnostics: [Diagnostic] = []
    for (file, text) in [("base.yaml", gatewayBase), ("test.yaml", documents)] {
        set.files.append(file)
        ConfigLoader.load(text: text, file: file, into: &set, diagnostics: &diagnostics)
    }
    diagnostics += ConfigValidator.validate(set)
    return ConfigPipeline.checked(set, diagnostics: diagnostics).diagnostics
}

func errors(in diagnostics: [Diagnostic]) -> [Diagnostic] { diagnostics.filter { $0.severity == .error } }

/// One AuthorizationPolicy document from its spec (YAML flow style is fine).
func policy(_ spec: String, name: String = "p", namespace: String = "istio-system") -> String {
    """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: \(name), namespace: \(namespace)}
    spec: \(spec)

    """
}

func engine(_ documents: String, port: Int = 8080) throws -> AuthorizationEngine {
    try #require(try compileSnapshot(documents).listener(port: port)).authorization
}

/// A plaintext GET / from 10.0.0.1 to example.com on 8080, unless changed.
func request(_ change: (inout AuthorizationRequest) -> Void = { _ in }) -> AuthorizationRequest {
    var request = AuthorizationRequest(method: "GET", path: "/", host: "example.com", port: 8080, headers: Headers(),
                                       sourceIP: IPAddress("10.0.0.1"), remoteIP: IPAddress("10.0.0.1"),
                                       destinationIP: IPAddress("10.0.0.100"))
    change(&request)
    return request
}

let spiffeClient = "spiffe://cluster.local/ns/apps/sa/client"

func jwt(_ claims: [String: JSONValue]) -> JWTIdentity {
    JWTIdentity(principal: "\(claims["iss"]?.stringValue ?? "")/\(claims["sub"]?.stringValue ?? "")", claims: claims)
}
