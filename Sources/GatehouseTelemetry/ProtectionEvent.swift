/// Something the gateway did to protect itself from a client: a connection or request cut off or
/// refused. Each is counted in `gatehouse_downstream_protection_events_total{event="..."}`; where a
/// request existed, its access-log line carries the same cause in `response_code_details` or
/// `connection_termination_details`.
public enum ProtectionEvent: String, CaseIterable, Sendable {
    /// A TLS client did not finish its handshake within `limits.tlsHandshakeTimeout`.
    case tlsHandshakeTimeout = "tls_handshake_timeout"
    /// A handshake failed: untrusted or expired client certificate, no common version or cipher, a
    /// client certificate without the required subjectAltNames, or plain bytes on a TLS port.
    case tlsHandshakeError = "tls_handshake_error"
    /// No TLS server on the port takes the ClientHello's SNI.
    case tlsUnknownServerName = "tls_unknown_server_name"
    /// A request head did not arrive within `limits.requestHeadersTimeout` (408).
    case requestHeadersTimeout = "request_headers_timeout"
    /// A connection was silent for `limits.idleTimeout`.
    case idleTimeout = "idle_timeout"
    /// A request head over `maxRequestHeadersKb` or with more than `maxRequestHeaders` fields (431).
    case requestHeadersTooLarge = "request_headers_too_large"
    /// A malformed HTTP/1.1 request (400, 501).
    case malformedRequest = "malformed_request"
    /// A route regex hit PCRE2's match or depth limit on a request (a pathological subject): the
    /// request was refused (400) rather than routed as if the regex had not matched.
    case regexMatchLimit = "regex_match_limit"
    /// A connection over `limits.maxConnections`, refused before anything was read.
    case connectionLimit = "connection_limit"
    /// An HTTP/2 stream reset by the gateway for a protocol error (malformed headers, for instance).
    case http2StreamError = "http2_stream_error"
    /// An HTTP/2 stream refused (REFUSED_STREAM) because the client went over the concurrent-stream
    /// limit; the connection goes on (RFC 9113 §5.1.2).
    case http2RefusedStream = "http2_refused_stream"
    /// An HTTP/2 connection closed with GOAWAY for a protocol error.
    case http2ConnectionError = "http2_connection_error"
    /// An HTTP/2 connection closed for a flood: resets (CVE-2023-44487), CONTINUATION frames, empty
    /// DATA frames, control frames, or stream errors faster than the limits allow.
    case http2Flood = "http2_flood"
}
