import Foundation
import GatehouseConfig
import GatehouseHTTP1
import GatehouseProxy
import GatehouseSnapshot
import NIOCore

// Times the gateway's per-request work without sockets, one case per run:
//
//   gatehouse-microbench CASE [ITERATIONS]
//
// and prints `CASE ns/op OUTCOME`. The cases: `http1-parse` (the HTTP/1.1 codec on a typical browser
// request head); `route-10`, `route-1000`, `route-10000` (a request's whole decision against that many
// generated VirtualServices, one host each); `policy-10` (10 hosts, each with its own ALLOW policy:
// the baseline of the policy cases); `policy-1000` (1,000 hosts, each with its own ALLOW
// policy: 1,000 AuthorizationPolicies, of which the host index leaves one to check); `policy-1000-shared`
// (10 hosts sharing 1,000 policies: 100 apply to the request's host, and the path index leaves one).
// `bench/micro` runs them all, in release, with allocation counts.

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: gatehouse-microbench CASE [ITERATIONS]; cases: http1-parse route-10 route-1000 route-10000 policy-10 policy-1000 policy-1000-shared")
    exit(2)
}
let name = arguments[1]
let iterations = arguments.count > 2 ? Int(arguments[2]) ?? 200_000 : 200_000

/// A Bootstrap and Gateway on port 8080, `hosts` VirtualServices (host `svcI.bench.test`, three
/// prefix routes each) and `policies` ALLOW AuthorizationPolicies, each for one host and path.
func config(hosts: Int, policies: Int, extra: String = "") -> String {
    var text = """
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
            hosts: ["*"]
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: backend, namespace: istio-system}
        spec:
          hosts: [backend.bench.test]
          ports: [{number: 80, name: http, protocol: HTTP}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]

        """
    for index in 0..<hosts {
        text += """
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs\(index), namespace: istio-system}
            spec:
              hosts: [svc\(index).bench.test]
              gateways: [edge]
              http:
              - match: [{uri: {prefix: /admin}}]
                directResponse: {status: 403}
              - match: [{uri: {prefix: /static/}}, {uri: {exact: /favicon.ico}}]
                route: [{destination: {host: backend.bench.test, port: {number: 80}}}]
              - match: [{uri: {prefix: /api/}}]
                route: [{destination: {host: backend.bench.test, port: {number: 80}}}]

            """
    }
    for index in 0..<policies {
        text += """
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow\(index), namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: ingressgateway}}
              action: ALLOW
              rules:
              - to: [{operation: {hosts: [svc\(index % max(hosts, 1)).bench.test], paths: [/api/\(index)/*], methods: [GET]}}]

            """
    }
    return text + extra
}

func snapshot(hosts: Int, policies: Int, extra: String = "") -> Snapshot {
    let loaded = ConfigPipeline.load(text: config(hosts: hosts, policies: policies, extra: extra), file: "bench.yaml")
    guard !loaded.diagnostics.hasErrors, let compiled = try? SnapshotCompiler.compile(loaded, version: 1) else {
        print("the generated configuration does not load: \(loaded.diagnostics.errors.prefix(3))")
        exit(1)
    }
    return compiled
}

/// Runs `body` `iterations` times after a warm-up; returns nanoseconds per run.
func time(_ body: () -> Void) -> Double {
    for _ in 0..<min(iterations, 10_000) { body() }
    let clock = ContinuousClock()
    let elapsed = clock.measure { for _ in 0..<iterations { body() } }
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(iterations)
}

func dispatchCase(hosts: Int, policies: Int) -> (Double, String) {
    let compiled = snapshot(hosts: hosts, policies: policies)
    // The middle host, its last route: the worst a request can ask of route selection.
    let middle = hosts / 2
    let path = policies > 0 ? "/api/\(middle)/items?page=2" : "/api/items?page=2"
    let probe = DispatchProbe(snapshot: compiled, listenerPort: 8080, authority: "svc\(middle).bench.test", target: path,
                              headers: [("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"), ("accept", "*/*"),
                                        ("accept-encoding", "gzip, deflate, br"), ("cookie", "session=abc123")])
    let outcome = probe.run()
    return (time { probe.run() }, outcome)
}

/// route-10's request with an `x-api-key` header and a RateLimitPolicy rule that counts it and never
/// refuses it: per client IP, or a monthly quota per API key; nil: no policy (`ratelimit-none`, the
/// baseline). The difference from the baseline is what the rate-limit step costs a request (memory
/// store: a cache lookup and a compare-and-swap).
func rateLimitCase(_ rule: String?) -> (Double, String) {
    let policy = rule.map { rule in """
        ---
        apiVersion: gatehouse.dev/v1alpha1
        kind: RateLimitPolicy
        metadata: {name: bench, namespace: istio-system}
        spec:
          rules:
        \(rule)

        """ } ?? ""
    let compiled = snapshot(hosts: 10, policies: 0, extra: policy)
    let probe = DispatchProbe(snapshot: compiled, listenerPort: 8080, authority: "svc5.bench.test", target: "/api/items?page=2",
                              headers: [("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"), ("accept", "*/*"),
                                        ("accept-encoding", "gzip, deflate, br"), ("cookie", "session=abc123"),
                                        ("x-api-key", "bench-key")], countDecisions: true)
    let outcome = probe.run()
    return (time { probe.run() }, outcome)
}

func http1ParseCase() -> (Double, String) {
    let head = ByteBuffer(string: "GET /api/items?page=2 HTTP/1.1\r\nHost: svc5.bench.test\r\n"
        + "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
        + "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        + "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
        + "Cookie: session=abc123; theme=dark\r\nConnection: keep-alive\r\n\r\n")
    var decoder = HTTP1RequestDecoder(limits: HTTP1Limits())
    var method = ""
    let nanos = time {
        var bytes = head
        if case .head(let parsed)? = try? decoder.next(&bytes) { method = parsed.method }
        _ = try? decoder.next(&bytes)
    }
    return (nanos, "parsed \(method)")
}

let result: (Double, String)
switch name {
case "http1-parse": result = http1ParseCase()
case "route-10": result = dispatchCase(hosts: 10, policies: 0)
case "ratelimit-none": result = rateLimitCase(nil)
case "ratelimit-ip":
    result = rateLimitCase("  - {name: per-ip, key: [source.ip], limit: {requests: 100000000, unit: Second, burst: 100000000}}")
case "ratelimit-quota":
    result = rateLimitCase("  - {name: per-key, key: [\"request.headers[x-api-key]\"], quota: {requests: 4000000000, period: Month}}")
case "route-1000": result = dispatchCase(hosts: 1_000, policies: 0)
case "route-10000": result = dispatchCase(hosts: 10_000, policies: 0)
case "policy-10": result = dispatchCase(hosts: 10, policies: 10)
case "policy-1000": result = dispatchCase(hosts: 1_000, policies: 1_000)
case "policy-1000-shared": result = dispatchCase(hosts: 10, policies: 1_000)
default:
    print("unknown case \(name)")
    exit(2)
}
print("\(name)\t\(String(format: "%.0f", result.0))\t\(result.1)")
