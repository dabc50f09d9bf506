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
    /// The headers sent upstream, built in one pass over the client's: hop-by-hop headers and those the
    /// `Connection` header names are dropped, client `x-envoy-*` headers are dropped (CVE-2023-27487),
    /// `x-forwarded-for` gets the client address appended, `x-forwarded-proto` and `x-request-id` are
    /// set, `expect` is dropped (the gateway answers 100-continue itself). `authority` replaces `Host`.
    static func upstreamRequest(_ headers: HTTPHeaders, clientAddress: String?, scheme: String,
                                requestID: String, authority: String?) -> HTTPHeaders {
        var out = HTTPHeaders()
        out.reserveCapacity(headers.count + 4)
        if let authority { out.add(name: "host", value: authority) }
        var forwardedFor = ""
        var named: [String] = []
        for (name, value) in headers {
            switch HeaderName.role(name) {
            case .connection: collectConnectionTokens(value, into: &named)
            case .hopByHop, .envoyInternal, .expect, .forwardedProto, .requestID: break
            case .forwardedFor:
                // Several x-forwarded-for headers are one list (RFC 9110 §5.3).
                if !value.isEmpty { forwardedFor += forwardedFor.isEmpty ? value : ",\(value)" }
            case .host: if authority == nil { out.add(name: name, value: value) }
            default: out.add(name: name, value: value)
            }
        }
        for name in named { out.remove(name: name) }
        if let clientAddress {
            out.add(name: "x-forwarded-for", value: forwardedFor.isEmpty ? clientAddress : "\(forwardedFor),\(clientAddress)")
        } else if !forwardedFor.isEmpty {
            out.add(name: "x-forwarded-for", value: forwardedFor)
        }
        out.add(name: "x-forwarded-proto", value: scheme)
        out.add(name: "x-request-id", value: requestID)
        return out
    }

    /// The headers sent back to the client: hop-by-hop headers dropped, `server: istio-envoy` (Envoy
    /// overwrites the upstream's) and `x-envoy-upstream-service-time` set.
    static func downstreamResponse(_ headers: HTTPHeaders, serviceTimeMillis: Int64) -> HTTPHeaders {
        var out = HTTPHeaders()
        out.reserveCapacity(headers.count + 2)
        var named: [String] = []
        for (name, value) in headers {
            switch HeaderName.role(name) {
            case .connection: collectConnectionTokens(value, into: &named)
            case .hopByHop, .server, .upstreamServiceTime: break
            default: out.add(name: name, value: value)
            }
        }
        for name in named { out.remove(name: name) }
        out.add(name: "server", value: "istio-envoy")
        out.add(name: "x-envoy-upstream-service-time", value: String(serviceTimeMillis))
        return out
    }

    /// Header names listed in `Connection` are hop-by-hop too; framing headers stay, the encoder needs them.
    private static func collectConnectionTokens(_ value: String, into named: inout [String]) {
        // Nearly always just `keep-alive` or `close`: nothing to collect, nothing to split.
        if HeaderName.equals(value, "keep-alive") || HeaderName.equals(value, "close") { return }
        for token in value.split(separator: ",") {
            let token = token.trimmingSpaces.lowercased()
            if token.isEmpty || token == "close" || token == "keep-alive" || token == "content-length"
                || token == "transfer-encoding" { continue }
            named.append(token)
        }
    }
}
