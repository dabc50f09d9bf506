import NIOHTTP1

/// Header rules at the proxy boundary: hop-by-hop headers never cross it (RFC 9110 §7.6.1), client-sent
/// `x-envoy-*` headers are dropped (CVE-2023-27487), and the forwarding headers are set as Envoy does at
/// an edge.
extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}

enum ForwardingHeaders {
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "upgrade",
                                        "proxy-authenticate", "proxy-authorization"]

    /// Removes hop-by-hop headers and those the `Connection` header names. Framing headers
    /// (`content-length`, `transfer-encoding`) stay: the encoder re-frames from them.
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        // One pass to see whether there is anything to remove: most requests have nothing but a
        // `connection: keep-alive`, and removing by name scans all headers each time.
        var found = false
        var named: [String] = []
        for (name, value) in headers where isHopByHop(name) {
            found = true
            if name.utf8.count == 10, name.lowercased() == "connection" {
                for token in value.split(separator: ",") {
                    let token = token.trimmingSpaces.lowercased()
                    if token != "close", token != "keep-alive", token != "content-length", token != "transfer-encoding" {
                        named.append(token)
                    }
                }
            }
        }
        guard found else { return }
        for name in named { headers.remove(name: name) }
        for name in hopByHop { headers.remove(name: name) }
    }

    static func isHopByHop(_ name: String) -> Bool {
        let count = name.utf8.count
        guard count == 2 || count == 7 || count == 10 || count == 16 || count == 18 || count == 19 else { return false }
        return hopByHop.contains(name.lowercased())
    }

    static func prepareUpstreamRequest(_ headers: inout HTTPHeaders, clientAddress: String?, scheme: String,
                                       requestID: String) {
        stripHopByHop(&headers)
        var envoyHeaders: [String] = []
        for (name, _) in headers where isEnvoyInternal(name) { envoyHeaders.append(name) }
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

    /// `x-envoy-*`, compared without allocating (this runs for every header of every request).
    static func isEnvoyInternal(_ name: String) -> Bool {
        let prefix = "x-envoy-".utf8
        var iterator = name.utf8.makeIterator()
        for expected in prefix {
            guard let byte = iterator.next() else { return false }
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != expected { return false }
        }
        return true
    }

    static func prepareDownstreamResponse(_ headers: inout HTTPHeaders) {
        stripHopByHop(&headers)
        // Envoy overwrites the upstream's `server` header; Istio gateways answer as istio-envoy.
        headers.replaceOrAdd(name: "server", value: "istio-envoy")
    }
}
