import GatehouseHTTP1

/// Header rules at the proxy boundary: hop-by-hop headers never cross it (RFC 9110 §7.6.1), client-sent
/// `x-envoy-*` headers are dropped (CVE-2023-27487), and the forwarding headers are set as Envoy does at
/// an edge. Both directions work in place on the received block, so surviving lines are forwarded as
/// they arrived.
enum ForwardingHeaders {
    /// Turns the client's headers into those sent upstream: hop-by-hop headers and those `Connection`
    /// names are dropped, client `x-envoy-*` headers are dropped, `x-forwarded-for` gets the client
    /// address appended, `x-forwarded-proto` and `x-request-id` are set, `expect` is dropped (the gateway
    /// answers 100-continue itself). `replacesHost`: the caller writes its own `Host`.
    static func prepareUpstreamRequest(_ headers: inout HTTPHeaderBlock, connection: ConnectionOptions,
                                       clientAddress: String?, scheme: String, requestID: String,
                                       replacesHost: Bool) {
        let nominated = connection.namesOtherHeaders ? nominatedHeaders(headers) : []
        // Several x-forwarded-for headers are one list (RFC 9110 §5.3).
        var forwardedFor = ""
        headers.forEachValue(role: .forwardedFor) { value in
            guard !value.isEmpty else { return }
            if !forwardedFor.isEmpty { forwardedFor += "," }
            forwardedFor += String(decoding: value, as: UTF8.self)
        }
        headers.removeAll { _, _, role in
            switch role {
            case .hopByHop, .connection, .upgrade, .envoyInternal, .expect, .forwardedProto, .requestID, .forwardedFor:
                true
            case .host: replacesHost
            default: false
            }
        }
        for name in nominated { headers.remove(name) }
        if let clientAddress {
            headers.add("x-forwarded-for", forwardedFor.isEmpty ? clientAddress : "\(forwardedFor),\(clientAddress)")
        } else if !forwardedFor.isEmpty {
            headers.add("x-forwarded-for", forwardedFor)
        }
        headers.add("x-forwarded-proto", scheme)
        headers.add("x-request-id", requestID)
    }

    /// Turns the upstream's response headers into those sent to the client: hop-by-hop and framing
    /// headers dropped (the downstream side frames the body itself, except for a Content-Length it
    /// keeps), `server: istio-envoy` (Envoy overwrites the upstream's) and
    /// `x-envoy-upstream-service-time` set.
    static func prepareDownstreamResponse(_ headers: inout HTTPHeaderBlock, connection: ConnectionOptions,
                                          framing: HTTP1BodyFraming, serviceTimeMillis: Int64) {
        let nominated = connection.namesOtherHeaders ? nominatedHeaders(headers) : []
        let keepsLength: Bool
        switch framing {
        case .chunked, .untilClose: keepsLength = false
        case .none, .contentLength: keepsLength = true
        }
        headers.removeAll { _, _, role in
            switch role {
            case .hopByHop, .connection, .upgrade, .transferEncoding, .server, .upstreamServiceTime: true
            case .contentLength: !keepsLength
            default: false
            }
        }
        for name in nominated { headers.remove(name) }
        headers.add("server", "istio-envoy")
        headers.add("x-envoy-upstream-service-time", String(serviceTimeMillis))
    }

    /// Header names listed in `Connection` are hop-by-hop too; the framing headers stay, as the message
    /// cannot be delimited without them.
    static func nominatedHeaders(_ headers: HTTPHeaderBlock) -> [String] {
        var names: [String] = []
        headers.forEachValue(role: .connection) { value in
            ASCII.forEachListElement(value) { token in
                if ASCII.equalsLowercase(token, "close") || ASCII.equalsLowercase(token, "keep-alive")
                    || ASCII.equalsLowercase(token, "content-length") || ASCII.equalsLowercase(token, "transfer-encoding") {
                    return
                }
                names.append(String(decoding: token, as: UTF8.self))
            }
        }
        return names
    }
}
