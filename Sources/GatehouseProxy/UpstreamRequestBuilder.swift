import GatehouseHTTP1
import GatehouseRouting
import GatehouseSecurity
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
}

/// Builds the request sent upstream: rewrites, forwarding headers, then the destination's and the
/// route's header mutations (most specific first, as Envoy applies them), encoded once.
enum UpstreamRequestBuilder {
    static func build(head: HTTP1RequestHead, target: RequestTarget, route: Route, matched: RouteMatch?,
                      rewrite: Rewrite?, destination: WeightedDestination, clientIP: String?,
                      scheme: String = "http", requestID: String, http2: Bool = false,
                      authentication: HeaderChanges? = nil, allocator: ByteBufferAllocator) -> UpstreamRequest {
        var path = target.path
        var originalPath: String?
        if let rewrite {
            let rewritten = rewrite.rewritePath(target.path, matchedBy: matched)
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
                                                 scheme: scheme, requestID: requestID, replacesHost: authority != nil)
        if let originalPath { headers.add("x-envoy-original-path", originalPath) }
        if let authentication {
            for name in authentication.remove { headers.remove(name) }
            for (name, value) in authentication.set { headers.set(name, value) }
        }
        headers.apply([destination.requestHeaders, route.requestHeaders])
        let uri = target.query.map { "\(path)?\($0)" } ?? path
        if http2 {
            var fields = HPACKHeaders()
            fields.add(name: ":method", value: head.method)
            fields.add(name: ":scheme", value: "http")
            fields.add(name: ":authority", value: authority ?? target.authority)
            fields.add(name: ":path", value: uri)
            if trailersAccepted { fields.add(name: "te", value: "trailers") }
            headers.appendHTTP2Fields(to: &fields, excluding: [.host])  // :authority carries it
            return UpstreamRequest(head: .http2(fields), framing: head.framing, isHEAD: head.isHEAD)
        }
        var out = allocator.buffer(capacity: headers.estimatedSize + head.method.utf8.count + uri.utf8.count
                                   + (authority?.utf8.count ?? 0) + 32)
        HTTP1Encoder.writeRequestLine(method: head.method, target: uri, into: &out)
        if let authority { HTTP1Encoder.writeField("host", authority, into: &out) }
        // Content-Length and `Transfer-Encoding: chunked` pass through: the body is re-framed the same way.
        // A request without either that has a body (HTTP/2 without content-length) goes chunked.
        if head.framing == .chunked, !headers.hasField(role: .transferEncoding) {
            headers.add("transfer-encoding", "chunked")
        }
        if let upgrade {
            headers.add("connection", "upgrade")
            headers.add("upgrade", upgrade)
        }
        headers.write(into: &out)
        out.writeStaticString("\r\n")
        return UpstreamRequest(head: .http1(out), framing: head.framing, isHEAD: head.isHEAD, upgrade: upgrade)
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
