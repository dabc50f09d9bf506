import NIOHTTP1

/// Header rules at the proxy boundary: hop-by-hop headers never cross it (RFC 9110 §7.6.1), client-sent
/// `x-envoy-*` headers are dropped (CVE-2023-27487), and the forwarding headers are set as Envoy does at
/// an edge.
enum ForwardingHeaders {
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "upgrade",
                                        "proxy-authenticate", "proxy-authorization"]

    /// Removes hop-by-hop headers and those the `Connection` header names. Framing headers
    /// (`content-length`, `transfer-encoding`) stay: the encoder re-frames from them.
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        var named: [String] = []
        for value in headers[canonicalForm: "connection"] {
            let token = value.lowercased()
            if token != "close", token != "keep-alive" { named.append(String(token)) }
        }
        if !named.isEmpty {
            for name in named where name != "content-length" && name != "transfer-encoding" { headers.remove(name: name) }
        }
        for name in hopByHop { headers.remove(name: name) }
    }

    static func prepareUpstreamRequest(_ headers: inout HTTPHeaders, clientAddress: String?, scheme: String,
                                       requestID: String) {
        stripHopByHop(&headers)
        var envoyHeaders: [String] = []
        for (name, _) in headers where name.count > 8 && name.lowercased().hasPrefix("x-envoy-") {
            envoyHeaders.append(name)
        }
        for name in envoyHeaders { headers.remove(name: name) }
        if let clientAddress {
            // Several x-forwarded-for headers are one list (RFC 9110 §5.3).
            let existing = headers["x-forwarded-for"].filter { !$0.isEmpty }
            if !existing.isEmpty {
                headers.replaceOrAdd(name: "x-forwarded-for", value: existing.joined(separator: ",") + ",\(clientAddress)")
            } else {
                headers.replaceOrAdd(name: "x-forwarded-for", value: clientAddress)
            }
        }
        headers.replaceOrAdd(name: "x-forwarded-proto", value: scheme)
        headers.replaceOrAdd(name: "x-request-id", value: requestID)
    }

    static func prepareDownstreamResponse(_ headers: inout HTTPHeaders) {
        stripHopByHop(&headers)
        // Envoy overwrites the upstream's `server` header; Istio gateways answer as istio-envoy.
        headers.replaceOrAdd(name: "server", value: "istio-envoy")
    }
}
