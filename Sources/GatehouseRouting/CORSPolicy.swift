import GatehouseRegex

/// Istio's `corsPolicy` as Envoy's CORS filter applies it to a route. A preflight (OPTIONS with
/// `Origin` and `Access-Control-Request-Method`) from an allowed origin is answered by the gateway; an
/// actual request from an allowed origin gets the CORS headers on its response. The request's origin is
/// echoed, as Envoy does, never `*`.
public struct CORSPolicy: Sendable {
    public var origins: [StringMatcher]
    public var allowMethods: String?
    public var allowHeaders: String?
    public var exposeHeaders: String?
    /// Seconds, as `Access-Control-Max-Age` says it.
    public var maxAge: String?
    public var allowCredentials: Bool
    /// A preflight from an origin not allowed goes to the upstream (Istio's FORWARD, the default) or is
    /// answered 200 without CORS headers (IGNORE).
    public var forwardsUnmatchedPreflights: Bool

    public init(origins: [StringMatcher], allowMethods: String?, allowHeaders: String?, exposeHeaders: String?,
                maxAge: String?, allowCredentials: Bool, forwardsUnmatchedPreflights: Bool) {
        self.origins = origins
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
        self.exposeHeaders = exposeHeaders
        self.maxAge = maxAge
        self.allowCredentials = allowCredentials
        self.forwardsUnmatchedPreflights = forwardsUnmatchedPreflights
    }

    /// Whether `origin` may make cross-origin requests. A regex that cannot decide allows nothing.
    public func allows(origin: String) -> Bool {
        origins.contains { (try? $0.matches(origin)) ?? false }
    }

    /// The answer to an allowed preflight.
    public func preflightHeaders(origin: String) -> [(String, String)] {
        var headers = [("access-control-allow-origin", origin)]
        if allowCredentials { headers.append(("access-control-allow-credentials", "true")) }
        if let allowMethods { headers.append(("access-control-allow-methods", allowMethods)) }
        if let allowHeaders { headers.append(("access-control-allow-headers", allowHeaders)) }
        if let maxAge { headers.append(("access-control-max-age", maxAge)) }
        return headers
    }

    /// Added to the response of an actual request from an allowed origin.
    public func responseHeaders(origin: String) -> [(name: String, value: String)] {
        var headers = [(name: "access-control-allow-origin", value: origin)]
        if allowCredentials { headers.append((name: "access-control-allow-credentials", value: "true")) }
        if let exposeHeaders { headers.append((name: "access-control-expose-headers", value: exposeHeaders)) }
        return headers
    }
}
