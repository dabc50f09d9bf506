@testable import GatehouseConfig

/// Loads YAML documents from strings as if they were files, and returns the diagnostics.
func load(_ files: [String: String]) -> (ConfigSet, [Diagnostic]) {
    var set = ConfigSet()
    var diagnostics: [Diagnostic] = []
    for (name, text) in files.sorted(by: { $0.key < $1.key }) {
        set.files.append(name)
        ConfigLoader.load(text: text, file: name, into: &set, diagnostics: &diagnostics)
    }
    diagnostics += ConfigValidator.validate(set)
    return (set, diagnostics)
}

let bootstrapYAML = """
apiVersion: gatehouse.dev/v1alpha1
kind: Bootstrap
metadata: {name: edge, namespace: istio-system}
spec:
  accessLog: {path: "-"}

"""

let gatewayYAML = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]

"""

let serviceEntryYAML = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: istio-system}
spec:
  hosts: [backend.example.internal]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    labels: {version: v1}
  - address: 127.0.0.2
    labels: {version: v2}

"""

/// A base config (Bootstrap + Gateway + ServiceEntry) plus `extra` in its own file `test.yaml`.
func loadWithBase(_ extra: String) -> [Diagnostic] {
    load(["base.yaml": bootstrapYAML + "---\n" + gatewayYAML + "---\n" + serviceEntryYAML, "test.yaml": extra]).1
}

func errors(in diagnostics: [Diagnostic]) -> [Diagnostic] { diagnostics.filter { $0.severity == .error } }
