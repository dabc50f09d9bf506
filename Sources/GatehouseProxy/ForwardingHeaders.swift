import GatehouseConfig
import GatehouseHTTP1

/// Header rules at the proxy boundary: hop-by-hop headers never cross it (RFC 9110 §7.6.1), client-sent
/// `x-envoy-*` headers are dropped (CVE-2023-27487), framing headers are regenerated rather than
/// forwarded, `x-forwarded-client-cert` follows `forwardClientCertDetails`, and the forwarding headers
/// are set as Envoy does at an edge. Both directions work in place on the received block, so surviving
/// lines are forwarded as they arrived.
enum ForwardingHeaders {
    /// Turns the client's headers into those sent upstream: hop-by-hop headers and those `Connection`
    /// names are dropped, client `x-envoy-*` headers are dropped, Content-Length and Transfer-Encoding
    /// are dropped (the caller writes the framing it chose), `x-forwarded-for` gets the client address
    /// appended, `x-forwarded-proto` and `x-request-id` are set, `expect` is dropped (the gateway
    /// answers 100-continue itself), and `x-forwarded-client-cert` becomes what `clientCert` says.
    /// `replacesHost`: the caller writes its own `Host`.
    static func prepareUpstreamRequest(_ headers: inout HTTPHeaderBlock, connection: ConnectionOptions,
                                       clientAddress: String?, scheme: String, requestID: String,
                                       replacesHost: Bool, clientCert: ClientCertForwarding = .sanitize) {
        let nominated = connection.namesOtherHeaders ? nominatedHeaders(headers) : []
        // Several x-forwarded-for headers are one list (RFC 9110 §5.3).
        var forwardedFor = ""
        headers.forEachValue(role: .forwardedFor) { value in
            guard !value.isEmpty else { return }
            if !forwardedFor.isEmpty { forwardedFor += "," }
            forwardedFor += String(decoding: value, as: UTF8.self)
        }
        var receivedCert: String?
        if clientCert.readsReceived {
            headers.forEachValue(role: .forwardedClientCert) { value in
                guard !value.isEmpty else { return }
                let text = String(decoding: value, as: UTF8.self)
                receivedCert = receivedCert.map { "\($0),\(text)" } ?? text
            }
        }
        headers.removeAll { _, _, role in
            switch role {
            case .hopByHop, .connection, .upgrade, .envoyInternal, .upstreamServiceTime, .expect, .forwardedProto,
                 .requestID, .forwardedFor, .forwardedClientCert, .contentLength, .transferEncoding:
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
        if let value = clientCert.upstreamValue(received: receivedCert) { headers.add("x-forwarded-client-cert", value) }
    }

    /// Turns the upstream's response headers into those sent to the client: hop-by-hop and framing
    /// headers dropped (the downstream side frames the body itself, and writes the Content-Length
    /// again, canonical, when it keeps one), `server: istio-envoy` (Envoy overwrites the upstream's)
    /// and `x-envoy-upstream-service-time` set.
    static func prepareDownstreamResponse(_ headers: inout HTTPHeaderBlock, connection: ConnectionOptions,
                                          serviceTimeMillis: Int64) {
        let nominated = connection.namesOtherHeaders ? nominatedHeaders(headers) : []
        headers.removeAll { _, _, role in
            switch role {
            case .hopByHop, .connection, .upgrade, .transferEncoding, .contentLength, .server, .upstreamServiceTime: true
            default: false
            }
        }
        for name in nominated { headers.remove(name) }
        headers.add("server", "istio-envoy")
        headers.add("x-envoy-upstream-service-time", decimal: Int64(serviceTimeMillis), role: .upstreamServiceTime)
    }

    /// The Content-Length a response keeps toward the client: the one it declared, unless its body is
    /// re-framed (chunked, or until close). A response to HEAD, or a 304, keeps it with no body.
    static func downstreamContentLength(_ response: HTTP1ResponseHead) -> Int64? {
        switch response.framing {
        case .chunked, .untilClose: nil
        case .contentLength(let length): length
        case .none: response.declaredContentLength
        }
    }

    /// Header names listed in `Connection` are hop-by-hop too (RFC 9110 §7.6.1), but never the ones a
    /// message cannot do without or the gateway answers for: Host, the framing headers, TE, and the
    /// forwarding, request-id, client-certificate and `x-envoy-*` headers. (What the gateway adds is
    /// added after the removal, so a client cannot nominate away a claim header or a mutation either.)
    static func nominatedHeaders(_ headers: HTTPHeaderBlock) -> [String] {
        var names: [String] = []
        headers.forEachValue(role: .connection) { value in
            ASCII.forEachListElement(value) { token in
                if ASCII.equalsLowercase(token, "close") || ASCII.equalsLowercase(token, "keep-alive") { return }
                switch HeaderRole.classify(token) {
                case .host, .contentLength, .transferEncoding, .forwardedFor, .forwardedProto, .requestID,
                     .forwardedClientCert, .envoyInternal, .upstreamServiceTime:
                    return
                case .hopByHop where ASCII.equalsLowercase(token, "te"):
                    return
                default:
                    names.append(String(decoding: token, as: UTF8.self))
                }
            }
        }
        return names
    }
}

/// `x-forwarded-client-cert` toward the upstream, as Envoy's `forward_client_cert_details` decides it.
/// "mTLS" means the client presented a certificate that verified; on any other connection (plain,
/// TLS without a client certificate) every mode but ALWAYS_FORWARD_ONLY removes the header.
struct ClientCertForwarding {
    typealias Mode = BootstrapSpec.ForwardClientCertDetails
    var mode: Mode
    /// This connection's element (`By=…;Hash=…;Subject=…;URI=…`), when it is mTLS.
    var current: String?

    static let sanitize = ClientCertForwarding(mode: .SANITIZE, current: nil)

    /// Whether the client's header matters at all (so it is read only when it does).
    var readsReceived: Bool {
        switch mode {
        case .FORWARD_ONLY, .APPEND_FORWARD: current != nil
        case .ALWAYS_FORWARD_ONLY: true
        case .SANITIZE, .SANITIZE_SET, .UNDEFINED: false
        }
    }

    /// The value to send, or nil to send none. `received` is the client's header, its fields joined.
    func upstreamValue(received: String?) -> String? {
        switch mode {
        case .SANITIZE: return nil
        case .ALWAYS_FORWARD_ONLY: return received
        case .FORWARD_ONLY: return current == nil ? nil : received
        case .APPEND_FORWARD:
            guard let current else { return nil }
            return received.map { "\($0),\(current)" } ?? current
        case .SANITIZE_SET, .UNDEFINED: return current
        }
    }
}
