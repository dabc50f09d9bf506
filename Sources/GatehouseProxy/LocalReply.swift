/// A response the gateway makes itself, with the body, response flag and details Envoy uses for the
/// same situation, so dashboards and greps built for Istio keep working.
import GatehouseHTTP1
import GatehouseRouting
import GatehouseTelemetry

struct LocalReply {
    var status: Int
    var body: [UInt8]
    var flag: ResponseFlags
    var details: String
    var extraHeaders: [(String, String)] = []
    /// Local replies for protocol errors end the connection.
    var closeConnection = false
    /// Set: a gRPC request is answered trailers-only with this `grpc-status` (Envoy's local reply to
    /// gRPC); any other request gets the reply as it is.
    var grpcStatus: Int? = nil

    static let noRoute = LocalReply(status: 404, body: [], flag: .noRouteFound, details: "route_not_found")
    /// The rate-limit store could not answer and its `failureMode` is deny: Envoy's rate limit filter
    /// with `failure_mode_deny` (500, flag RLSE, no body).
    static let rateLimitStoreError = LocalReply(status: 500, body: [], flag: .rateLimitServiceError,
                                                details: "rate_limiter_error")
    static let noHealthyUpstream = LocalReply(status: 503, body: Array("no healthy upstream".utf8),
                                              flag: .noHealthyUpstream, details: "no_healthy_upstream")
    static let connectFailure = LocalReply(
        status: 503,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: connection failure".utf8),
        flag: .upstreamConnectionFailure, details: "upstream_reset_before_response_started{connection_failure}")
    /// A connect that failed in its TLS handshake: Envoy's body names the transport failure, and so do
    /// the details (spaces turned to underscores, as Envoy writes them).
    static func connectFailure(transportFailureReason reason: String) -> LocalReply {
        LocalReply(status: 503,
                   body: Array("upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: \(reason)".utf8),
                   flag: .upstreamConnectionFailure,
                   details: "upstream_reset_before_response_started{connection_failure|\(String(reason.map { $0 == " " ? "_" : $0 }))}")
    }
    /// VirtualService `fault.abort`: Envoy's fault filter answers with the configured status; a gRPC
    /// status is answered HTTP 200 (trailers-only to a gRPC request).
    static func faultAbort(_ abort: FaultInjection.Abort) -> LocalReply {
        let body = Array("fault filter abort".utf8)
        switch abort {
        case .httpStatus(let status):
            return LocalReply(status: status, body: body, flag: .faultInjected, details: "fault_filter_abort")
        case .grpcStatus(let code):
            return LocalReply(status: 200, body: body, flag: .faultInjected, details: "fault_filter_abort", grpcStatus: code)
        }
    }

    /// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, percent-encoded.
    static func grpcMessage(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            if (0x20...0x7E).contains(byte), byte != UInt8(ascii: "%") {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The reply as a gRPC request gets it: trailers-only (HTTP 200, no body), the status in
    /// `grpc-status` and the text in `grpc-message`, as Envoy's local replies to gRPC are.
    func forGRPCRequest() -> LocalReply {
        guard let grpcStatus else { return self }
        var reply = self
        reply.status = 200
        // Headers of the reply's own (a 429's `x-ratelimit-*`) stay.
        reply.extraHeaders = [("content-type", "application/grpc"), ("grpc-status", String(grpcStatus)),
                              ("grpc-message", Self.grpcMessage(body))] + extraHeaders
        reply.body = []
        return reply
    }
    /// An egress request for a host no ServiceEntry declares (REGISTRY_ONLY).
    static let notInRegistry = LocalReply(status: 502, body: Array("host not in the service registry".utf8),
                                          flag: .noRouteFound, details: "outbound_host_not_in_registry")
    /// A `connectionPool` limit of the cluster was reached (Envoy's circuit breakers).
    static let overflow = LocalReply(
        status: 503,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: overflow".utf8),
        flag: .upstreamOverflow, details: "upstream_reset_before_response_started{overflow}")
    static let connectionTermination = LocalReply(
        status: 503,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: connection termination".utf8),
        flag: .upstreamConnectionTermination, details: "upstream_reset_before_response_started{connection_termination}")
    static let upstreamProtocolError = LocalReply(
        status: 502,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: protocol error".utf8),
        flag: .upstreamProtocolError, details: "upstream_reset_before_response_started{protocol_error}")
    static let upstreamTimeout = LocalReply(status: 504, body: Array("upstream request timeout".utf8),
                                            flag: .upstreamRequestTimeout, details: "upstream_response_timeout")
    /// The last try's `perTryTimeout` fired before a response, and no retry followed.
    static let upstreamPerTryTimeout = LocalReply(status: 504, body: Array("upstream request timeout".utf8),
                                                  flag: .upstreamRequestTimeout, details: "upstream_per_try_timeout")

    /// The reply after retries: Envoy's reset bodies say the reset reason is the latest of several.
    func afterRetries() -> LocalReply {
        let prefix = Array("upstream connect error or disconnect/reset before headers. ".utf8)
        guard body.starts(with: prefix) else { return self }
        var reply = self
        reply.body = prefix + Array("retried and the latest ".utf8) + body.dropFirst(prefix.count)
        return reply
    }
    /// The Host names a host the TLS server chosen by SNI does not serve (Istio's Host/SNI advice).
    static let misdirectedRequest = LocalReply(status: 421, body: Array("Misdirected Request".utf8), flag: [],
                                               details: "misdirected_request")
    static let headersTooLarge = LocalReply(status: 431, body: Array("Request Header Fields Too Large".utf8),
                                            flag: .downstreamProtocolError, details: "http1.headers_too_large", closeConnection: true)
    /// HTTP/2 fields past `maxRequestHeaders` or `maxRequestHeadersKb`: the HTTP/1.1 limits, answered the
    /// same way (the stream ends; the connection stays).
    static let http2HeadersTooLarge = LocalReply(status: 431, body: Array("Request Header Fields Too Large".utf8),
                                                 flag: .downstreamProtocolError, details: "http2.headers_too_large")
    static let requestHeadersTimeout = LocalReply(status: 408, body: Array("request timeout".utf8),
                                                  flag: [], details: "request_header_timeout", closeConnection: true)

    /// A route regex could not decide within PCRE2's limits: refused, never routed elsewhere.
    static let regexMatchLimit = LocalReply(status: 400, body: Array("Bad Request".utf8), flag: [],
                                            details: "regex_match_limit_exceeded")

    static func badRequest(details: String = "http1.codec_error") -> LocalReply {
        LocalReply(status: 400, body: Array("Bad Request".utf8), flag: .downstreamProtocolError, details: details, closeConnection: true)
    }

    /// A CONNECT the gateway does not serve (anything but RFC 8441 WebSocket to an HTTP/1.1 upstream).
    static func connectNotServed(details: String) -> LocalReply {
        LocalReply(status: 501, body: Array("Not Implemented".utf8), flag: [], details: details)
    }

    static let notImplemented = LocalReply(status: 501, body: Array("Not Implemented".utf8), flag: .downstreamProtocolError,
                                           details: "http1.invalid_transfer_encoding", closeConnection: true)

    /// The reply's header fields, as Envoy sends them, with the route's response mutations applied.
    func headers(route: Route?) -> HTTPHeaderBlock {
        var headers = HTTPHeaderBlock()
        if !body.isEmpty { headers.add("content-type", "text/plain") }
        headers.add("content-length", decimal: Int64(body.count))
        for (name, value) in extraHeaders { headers.add(name, value) }
        headers.add("date", HTTPDate.now())
        headers.add("server", "istio-envoy")
        if let route { headers.apply([route.responseHeaders]) }
        return headers
    }

    /// A CORS preflight answered by the gateway (Envoy's CORS filter).
    static func corsPreflight(headers: [(String, String)]) -> LocalReply {
        LocalReply(status: 200, body: [], flag: [], details: "cors_response", extraHeaders: headers)
    }

    static func direct(status: Int, body: [UInt8]) -> LocalReply {
        LocalReply(status: status, body: body, flag: [], details: "direct_response")
    }

    static func redirect(status: Int, location: String) -> LocalReply {
        LocalReply(status: status, body: [], flag: [], details: "redirect", extraHeaders: [("location", location)])
    }
}
