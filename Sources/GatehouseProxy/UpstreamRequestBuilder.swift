import GatehouseHTTP1
import GatehouseRouting
import GatehouseSecurity
import GatehouseTelemetry
import GatehouseRegex
import NIOCore
import NIOHPACK

/// The request as it goes upstream: its head already encoded for the upstream's protocol, and how its
/// body is framed.
struct UpstreamRequest {
    enum Head {
        /// Request line and header lines.
        case http1(ByteBuffer)
        /// HEADERS fields, pseudo-headers first.
        case http2(HPACKHeaders)
    }

    var head: Head
    var framing: HTTP1BodyFraming
    var isHEAD: Bool
    /// A WebSocket upgrade (HTTP/1.1 only): after a 101 the exchange becomes a byte tunnel.
    var upgrade: String? = nil
    /// The `Sec-WebSocket-Accept` the upstream must answer with, when the gateway made the key itself
    /// (bridging WebSocket over HTTP/2 to an HTTP/1.1 upgrade): anything else is not a WebSocket.
    var expectedWebSocketAccept: String? = nil
    /// The host the request names upstream (after any authority rewrite): the SNI and the name checked
    /// in the certificate of a TLS upstream whose rule sets no `sni` (Istio's automatic SNI).
    var authority: Substring = ""
}

/// Builds the request sent upstream: rewrites, forwarding headers, then the destination's and the
/// route's header mutations (most specific first, as Envoy applies them), encoded once. The framing is
/// the gateway's own: exactly one canonical `content-length` or `transfer-encoding: chunked`, never
/// what the client wrote.
enum UpstreamRequestBuilder {
    /// nil when the encoder refuses the request line or the `Host` it would write (a path, method or
    /// authority that is not valid on the wire): such a request is answered 400, never forwarded.
    static func build(head: RequestHead, target: RequestTarget, route: Route, matched: RouteMatch?,
                      rewrite: Rewrite?, destination: WeightedDestination, clientIP: String?,
                      scheme: String = "http", requestID: String, http2: Bool = false, upstreamTLS: Bool = false,
                      authentication: HeaderChanges? = nil, clientCert: ClientCertForwarding = .sanitize,
                      metrics: GatewayMetrics? = nil, allocator: ByteBufferAllocator) throws(RegexLimitExceeded)
        -> UpstreamRequest? {
        var path = target.path
        var originalPath: String?
        if let rewrite {
            let rewritten = try rewrite.rewritePath(target.path, matchedBy: matched)
            if rewritten != path {
                originalPath = head.target
                path = rewritten
            }
        }
        // Absolute-form targets carry the authority themselves; a rewrite replaces it.
        let authority = rewrite?.authority ?? (target.isAbsoluteForm || !target.hadHost ? target.authority : nil)
        // WebSocket is the one upgrade proxied (Envoy's default `upgrade_configs`, which Istio enables);
        // other Upgrade requests are forwarded as plain requests, the header dropped as hop-by-hop.
        let upgrade: String? = !http2 && head.connection.upgrade
            ? head.headers.first(role: .upgrade).flatMap { $0.lowercased() == "websocket" ? $0 : nil } : nil
        // gRPC needs `te: trailers`, the one TE value HTTP/2 allows (RFC 9113 §8.2.2): kept for HTTP/2.
        let trailersAccepted = http2 && head.headers.values("te").contains { $0.lowercased().contains("trailers") }
        var headers = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&headers, connection: head.connection, clientAddress: clientIP,
                                                 scheme: scheme, requestID: requestID, replacesHost: authority != nil,
                                                 clientCert: clientCert)
        if let originalPath { headers.add("x-envoy-original-path", originalPath) }
        if let authentication {
            for name in authentication.remove { headers.remove(name) }
            var invalidClaims = 0
            for (name, value) in authentication.set {
                // A claim is the token issuer's text, not a header: one with a control byte is dropped
                // (and counted) rather than let a token write headers of its own.
                guard FieldSyntax.isValidValue(value) else {
                    invalidClaims += 1
                    continue
                }
                headers.set(name, value)
            }
            metrics?.record(.invalidClaimValue, count: invalidClaims)
        }
        headers.apply([destination.requestHeaders, route.requestHeaders])
        let uri = target.query.map { "\(path)?\($0)" } ?? path
        // A request without a body still says so when the client gave a length, or when its method
        // usually has one (an upstream may answer a bodyless POST 411 otherwise).
        let length: Int64? = switch head.framing {
        case .contentLength(let length): length
        case .none: head.declaredContentLength != nil || Self.usuallyHasBody(head.method) ? 0 : nil
        case .chunked, .untilClose: nil
        }
        if http2 {
            let authority = authority ?? target.authority
            guard FieldSyntax.isValidMethod(head.method), FieldSyntax.isValidTarget(uri),
                  FieldSyntax.isValidAuthority(authority) else { return nil }
            var fields = HPACKHeaders()
            fields.add(name: ":method", value: head.method)
            fields.add(name: ":scheme", value: upstreamTLS ? "https" : "http")
            fields.add(name: ":authority", value: authority)
            fields.add(name: ":path", value: uri)
            if trailersAccepted { fields.add(name: "te", value: "trailers") }
            // :authority carries the host; HTTP/2 frames the body itself, so only the length is said.
            let refused = headers.appendHTTP2Fields(to: &fields, excluding: [.host, .contentLength])
            if let length { fields.add(name: "content-length", value: String(length)) }
            metrics?.record(.invalidField, count: refused)
            return UpstreamRequest(head: .http2(fields), framing: head.framing, isHEAD: head.isHEAD,
                                   authority: HostAndPort.host(of: authority))
        }
        if let upgrade {
            headers.add("connection", "upgrade")
            headers.add("upgrade", upgrade)
        }
        var out = allocator.buffer(capacity: headers.estimatedSize + head.method.utf8.count + uri.utf8.count
                                   + (authority?.utf8.count ?? 0) + 64)
        guard HTTP1Encoder.writeRequestLine(method: head.method, target: uri, into: &out) else { return nil }
        if let authority { guard HTTP1Encoder.writeField("host", authority, into: &out) else { return nil } }
        let refused = headers.write(into: &out)
        if let length {
            HTTP1Encoder.writeContentLength(length, into: &out)
        } else if head.framing == .chunked {
            out.writeStaticString("transfer-encoding: chunked\r\n")
        }
        out.writeStaticString("\r\n")
        metrics?.record(.invalidField, count: refused)
        return UpstreamRequest(head: .http1(out), framing: head.framing, isHEAD: head.isHEAD, upgrade: upgrade,
                               authority: HostAndPort.host(of: authority ?? target.authority))
    }

    static func usuallyHasBody(_ method: String) -> Bool {
        method == "POST" || method == "PUT" || method == "PATCH"
    }
}

extension HTTPHeaderBlock {
    /// Applies Istio header operations (`headers.request|response`) in the order given.
    mutating func apply(_ mutations: [HeaderMutation]) {
        for mutation in mutations where !mutation.isEmpty {
            mutation.apply(remove: { remove($0) }, replace: { set($0, $1) }, append: { add($0, $1) })
        }
    }
}

/// `HeaderLookup` over a parsed header block, so the router reads headers in place.
struct HeaderBlockLookup: HeaderLookup {
    let headers: HTTPHeaderBlock
    func values(_ name: String) -> [String] { headers.values(name) }
}

/// The host part of an authority: `example.com:8443` → `example.com`, `[::1]:80` → `::1`.
enum HostAndPort {
    /// On the UTF-8 bytes: every request calls it, and scanning by Character (grapheme breaking) cost
    /// 1.5 % of a proxied request.
    static func host(of authority: String) -> Substring {
        let bytes = authority.utf8
        if bytes.first == UInt8(ascii: "["), let close = bytes.firstIndex(of: UInt8(ascii: "]")) {
            return authority[bytes.index(after: bytes.startIndex)..<close]
        }
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")), bytes.firstIndex(of: UInt8(ascii: ":")) == colon {
            return authority[..<colon]
        }
        return authority[...]
    }
}
