import GatehouseRegex
import GatehouseUpstream

/// One route of a virtual host: matches (OR), the action, and per-route settings.
public struct Route: Sendable {
    public var name: String?
    /// Empty means "always matches".
    public var matches: [RouteMatch]
    public var action: RouteAction
    public var requestHeaders: HeaderMutation
    public var responseHeaders: HeaderMutation
    /// nil: no timeout (Istio's default).
    public var timeoutNanoseconds: Int64?
    /// VirtualService `fault`: nil when the route injects none.
    public var fault: FaultInjection?
    /// VirtualService `corsPolicy`.
    public var cors: CORSPolicy?
    /// VirtualService `retries` (Istio's default policy when none is written); nil: retries are off.
    public var retryPolicy: RetryPolicy?
    /// VirtualService `mirror` / `mirrors`: where copies of the route's requests go.
    public var mirrors: [MirrorPolicy] = []

    public init(name: String? = nil, matches: [RouteMatch], action: RouteAction,
                requestHeaders: HeaderMutation = .none, responseHeaders: HeaderMutation = .none,
                timeoutNanoseconds: Int64? = nil, fault: FaultInjection? = nil, cors: CORSPolicy? = nil,
                retryPolicy: RetryPolicy? = nil) {
        self.fault = fault
        self.cors = cors
        self.retryPolicy = retryPolicy
        self.name = name
        self.matches = matches
        self.action = action
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    public var isCatchAll: Bool { matches.isEmpty || matches.contains { $0.isCatchAll } }
}

/// One mirror of a route: its cluster, and the share of requests copied to it (parts per million).
public struct MirrorPolicy: Sendable, Equatable {
    public var cluster: String
    public var clusterIndex: Int
    public var perMillion: UInt64

    public init(cluster: String, clusterIndex: Int, perMillion: UInt64) {
        self.cluster = cluster
        self.clusterIndex = clusterIndex
        self.perMillion = perMillion
    }

    /// Whether a request whose draw is `draw` is copied.
    public func mirrors(draw: UInt64) -> Bool { draw % 1_000_000 < perMillion }
}

/// Istio's `fault` compiled: a delay and an abort, each applied to a fraction of requests (in parts per
/// million, as Envoy's FractionalPercent), each decided by its own draw.
public struct FaultInjection: Sendable, Equatable {
    /// How an aborted request is answered.
    public enum Abort: Sendable, Equatable {
        case httpStatus(Int)
        /// A gRPC status code: a trailers-only gRPC response (HTTP 200) to a gRPC request.
        case grpcStatus(Int)
    }

    public var delayNanoseconds: Int64?
    public var delayPerMillion: UInt64
    public var abortWith: Abort?
    public var abortPerMillion: UInt64

    public init(delayNanoseconds: Int64?, delayPerMillion: UInt64, abortWith: Abort?, abortPerMillion: UInt64) {
        self.delayNanoseconds = delayNanoseconds
        self.delayPerMillion = delayPerMillion
        self.abortWith = abortWith
        self.abortPerMillion = abortPerMillion
    }

    /// The delay for a request whose draw (any 64-bit value) is `draw`, if it is delayed.
    public func delay(draw: UInt64) -> Int64? {
        guard let delayNanoseconds, draw % 1_000_000 < delayPerMillion else { return nil }
        return delayNanoseconds
    }

    /// How a request whose draw is `draw` is aborted, if it is.
    public func abort(draw: UInt64) -> Abort? {
        guard let abortWith, draw % 1_000_000 < abortPerMillion else { return nil }
        return abortWith
    }
}

/// A route chosen for a request, with the match entry that selected it (a prefix rewrite needs it).
public struct RouteSelection: Sendable {
    public var route: Route
    public var matched: RouteMatch?
}

public struct VirtualHost: Sendable {
    /// The domain this virtual host answers (`a.example.com`, `*.example.com` or `*`).
    public var domain: String
    public var routes: [Route]
    /// Set when the Gateway server has `tls.httpsRedirect`: every request gets a 301 to https.
    public var httpsRedirect: Bool

    public init(domain: String, routes: [Route], httpsRedirect: Bool = false) {
        self.domain = domain
        self.routes = routes
        self.httpsRedirect = httpsRedirect
    }

    /// First match wins, in order. Throws when a regex could not decide: the request is refused then,
    /// never handed to a later route.
    public func select(_ input: RouteInput) throws(RegexLimitExceeded) -> RouteSelection? {
        for route in routes {
            if route.matches.isEmpty { return RouteSelection(route: route, matched: nil) }
            for match in route.matches {
                if try match.matches(input) { return RouteSelection(route: route, matched: match) }
            }
        }
        return nil
    }
}

/// Virtual hosts of one listener: an exact-host hash first, then `*.suffix` wildcards longest first, then `*`.
public struct RouteTable: Sendable {
    private var index: HostIndex<VirtualHost>

    public init(virtualHosts: [VirtualHost]) {
        index = HostIndex(virtualHosts.map { ($0.domain, $0) })
    }

    public var virtualHosts: [VirtualHost] { index.values }

    public func virtualHost(forAuthority authority: String) -> VirtualHost? { index.lookup(authority) }

    public func select(_ input: RouteInput) throws(RegexLimitExceeded) -> (VirtualHost, RouteSelection?)? {
        guard let host = virtualHost(forAuthority: input.authority) else { return nil }
        return (host, try host.select(input))
    }
}
