import GatehouseRouting
import NIOHTTP1

/// Builds the request sent upstream: rewrites, forwarding headers, then the destination's and the
/// route's header mutations (most specific first, as Envoy applies them).
enum UpstreamRequestBuilder {
    static func build(head: HTTPRequestHead, target: RequestTarget, route: Route, matched: RouteMatch?,
                      rewrite: Rewrite?, destination: WeightedDestination, clientIP: String?,
                      requestID: String) -> HTTPRequestHead {
        var path = target.path
        var originalPath: String?
        if let rewrite {
            let rewritten = rewrite.rewritePath(target.path, matchedBy: matched)
            if rewritten != path {
                originalPath = head.uri
                path = rewritten
            }
        }
        // Absolute-form targets carry the authority themselves; a rewrite replaces it.
        let authority = rewrite?.authority ?? (target.isAbsoluteForm || !target.hadHost ? target.authority : nil)
        var headers = ForwardingHeaders.upstreamRequest(head.headers, clientAddress: clientIP, scheme: "http",
                                                        requestID: requestID, authority: authority)
        if let originalPath { headers.add(name: "x-envoy-original-path", value: originalPath) }
        headers.apply([destination.requestHeaders, route.requestHeaders])
        let uri = target.query.map { "\(path)?\($0)" } ?? path
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: headers)
    }
}
