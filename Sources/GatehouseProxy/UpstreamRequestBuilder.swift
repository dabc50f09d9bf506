import GatehouseRouting
import NIOHTTP1

/// Builds the request sent upstream: rewrites, forwarding headers, then the destination's and the
/// route's header mutations (most specific first, as Envoy applies them).
enum UpstreamRequestBuilder {
    static func build(head: HTTPRequestHead, target: RequestTarget, route: Route, matched: RouteMatch?,
                      rewrite: Rewrite?, destination: WeightedDestination, clientIP: String?,
                      requestID: String) -> HTTPRequestHead {
        var headers = head.headers
        ForwardingHeaders.prepareUpstreamRequest(&headers, clientAddress: clientIP, scheme: "http", requestID: requestID)
        headers.remove(name: "expect")  // 100-continue is answered by the gateway itself
        var path = target.path
        if let rewrite {
            let rewritten = rewrite.rewritePath(target.path, matchedBy: matched)
            if rewritten != path {
                headers.replaceOrAdd(name: "x-envoy-original-path", value: head.uri)
                path = rewritten
            }
            if let authority = rewrite.authority { headers.replaceOrAdd(name: "host", value: authority) }
        }
        if target.isAbsoluteForm || headers["host"].isEmpty {
            if rewrite?.authority == nil { headers.replaceOrAdd(name: "host", value: target.authority) }
        }
        for mutation in [destination.requestHeaders, route.requestHeaders] where !mutation.isEmpty {
            mutation.apply(remove: { headers.remove(name: $0) },
                           replace: { headers.replaceOrAdd(name: $0, value: $1) },
                           append: { headers.add(name: $0, value: $1) })
        }
        let uri = target.query.map { "\(path)?\($0)" } ?? path
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: headers)
    }
}
