/// One access-log line, with Istio's JSON field names. Unset values print as `null`, numbers as numbers,
/// `response_flags` as `-` when there is none — as Istio's JSON access log does.
public struct AccessLogRecord: Sendable {
    /// Wall-clock start, milliseconds since the Unix epoch.
    public var startTimeMillis: Int64 = 0
    public var method: String?
    /// The path as the client sent it (before rewrites), with its query.
    public var path: String?
    public var `protocol`: String? = "HTTP/1.1"
    public var responseCode: Int = 0
    public var responseFlags: ResponseFlags = []
    public var responseCodeDetails: String?
    public var connectionTerminationDetails: String?
    public var upstreamTransportFailureReason: String?
    public var bytesReceived: Int = 0
    public var bytesSent: Int = 0
    public var durationMillis: Int64 = 0
    public var upstreamServiceTimeMillis: Int64?
    public var xForwardedFor: String?
    public var userAgent: String?
    public var requestID: String?
    public var authority: String?
    public var upstreamHost: String?
    public var upstreamCluster: String?
    public var upstreamLocalAddress: String?
    public var downstreamLocalAddress: String?
    public var downstreamRemoteAddress: String?
    public var requestedServerName: String?
    public var routeName: String?
    public var sourcePrincipal: String?
    public var requestPrincipal: String?
    public var authzPolicy: String?
    /// The rate-limit rule that refused the request, an exhausted shadow rule, or the rule closest to
    /// exhaustion (`ratelimit`).
    public var ratelimit: RateLimitLogEntry?
    public var tlsVersion: String?
    /// A gRPC request (`content-type: application/grpc…`), and the `grpc-status` its response ended
    /// with: Istio's `request_protocol` and `grpc_response_status` labels (not logged).
    public var grpc = false
    public var grpcStatus: String?

    public init() {}

    /// The JSON object and a trailing newline, as UTF-8.
    public func jsonLine() -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(768)
        encode(into: &line)
        return line
    }

    /// Appends the JSON line to `buffer`: the data plane encodes every line of an event loop into one
    /// buffer, so a request costs no allocation for its log line.
    public func encode(into buffer: inout [UInt8]) {
        var out = JSONLineEncoder(appendingTo: &buffer)
        out.rawField("start_time") { Timestamp.appendISO8601(millis: startTimeMillis, to: &$0) }
        out.field("method", method)
        out.field("path", path)
        out.field("protocol", self.protocol)
        out.field("response_code", Int64(responseCode))
        out.field("response_flags", responseFlags.description)
        out.field("response_code_details", responseCodeDetails)
        out.field("connection_termination_details", connectionTerminationDetails)
        out.field("upstream_transport_failure_reason", upstreamTransportFailureReason)
        out.field("bytes_received", Int64(bytesReceived))
        out.field("bytes_sent", Int64(bytesSent))
        out.field("duration", durationMillis)
        out.field("upstream_service_time", upstreamServiceTimeMillis)
        out.field("x_forwarded_for", xForwardedFor)
        out.field("user_agent", userAgent)
        out.field("request_id", requestID)
        out.field("authority", authority)
        out.field("upstream_host", upstreamHost)
        out.field("upstream_cluster", upstreamCluster)
        out.field("upstream_local_address", upstreamLocalAddress)
        out.field("downstream_local_address", downstreamLocalAddress)
        out.field("downstream_remote_address", downstreamRemoteAddress)
        out.field("requested_server_name", requestedServerName)
        out.field("route_name", routeName)
        out.field("source_principal", sourcePrincipal)
        out.field("request_principal", requestPrincipal)
        out.field("authz_policy", authzPolicy)
        out.field("ratelimit", ratelimit)
        out.field("tls_version", tlsVersion)
        out.finish(into: &buffer)
    }
}

/// The access log's `ratelimit`: `ns/policy/rule remaining=N`, with ` shadow_limited` when a shadow rule
/// was exhausted, or `ns/policy/rule store_unavailable` when the redis store could not answer and the
/// Bootstrap's `failureMode` decided (the rule is the first that applied). Kept as parts so the request
/// path formats nothing.
public struct RateLimitLogEntry: Sendable, Equatable {
    public var rule: String
    public var remaining: Int
    public var shadowLimited: Bool
    public var storeUnavailable: Bool

    public init(rule: String, remaining: Int, shadowLimited: Bool = false, storeUnavailable: Bool = false) {
        self.rule = rule
        self.remaining = remaining
        self.shadowLimited = shadowLimited
        self.storeUnavailable = storeUnavailable
    }
}
