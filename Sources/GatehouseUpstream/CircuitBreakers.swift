/// A DestinationRule's `connectionPool` limits that Envoy enforces as circuit breakers, per cluster and
/// across every worker: a request over a limit is refused at once with 503 `UO`, never queued for later.
/// The connection limit is the exception: a request over it waits, as a pending request, for one of its
/// loop's connections to that endpoint to come free.
public struct CircuitBreakerLimits: Sendable, Hashable {
    /// `tcp.maxConnections`: connections open to the cluster's endpoints, idle ones included.
    public var maxConnections: Int?
    /// `http.http2MaxRequests`: requests in flight to the cluster, over either protocol.
    public var maxRequests: Int?
    /// `http.http1MaxPendingRequests`: requests waiting for an upstream connection to be established.
    public var maxPendingRequests: Int?
    /// `http.maxRetries`: retries under way to the cluster at once.
    public var maxRetries: Int?

    public init(maxConnections: Int? = nil, maxRequests: Int? = nil, maxPendingRequests: Int? = nil,
                maxRetries: Int? = nil) {
        self.maxConnections = maxConnections
        self.maxRequests = maxRequests
        self.maxPendingRequests = maxPendingRequests
        self.maxRetries = maxRetries
    }

    /// Whether one more may start when `current` are under way against `limit` (nil: no limit).
    public static func admits(_ current: Int, under limit: Int?) -> Bool {
        guard let limit else { return true }
        return current < limit
    }
}
