extension HTTPHeaderBlock {
    /// Drops what a trailer section must not carry (RFC 9110 §6.5.1): framing (Content-Length,
    /// Transfer-Encoding), routing (Host), connection control, request modifiers and conditionals,
    /// authentication, response control data and the fields that say how to process the content. A
    /// recipient would either ignore them or, worse, act on them after the head was already judged;
    /// forwarding them lets a client add a `Host` or `Authorization` that no check ever saw. Also drops
    /// pseudo-headers and `x-envoy-*`. Returns how many fields were dropped.
    @discardableResult
    public mutating func removeProhibitedTrailerFields() -> Int {
        let before = count
        removeAll { name, _, role in
            switch role {
            case .host, .contentLength, .transferEncoding, .connection, .upgrade, .hopByHop, .expect,
                 .envoyInternal, .upstreamServiceTime, .forwardedClientCert, .forwardedFor, .forwardedProto,
                 .requestID:
                return true
            case .other, .userAgent, .server, .rateLimit:
                return name.first == UInt8(ascii: ":") || Self.isProhibitedInTrailers(name)
            }
        }
        return before - count
    }

    /// RFC 9110 §6.5.1's classes, by the fields RFC 9110 and RFC 9111 define for them.
    private static let prohibitedInTrailers: [StaticString] = [
        // controls and conditionals (RFC 9110 §7, §13; RFC 9111 §5)
        "cache-control", "max-forwards", "pragma", "range", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range", "trailer",
        // authentication
        "authorization", "www-authenticate", "authentication-info", "proxy-authentication-info", "cookie",
        "set-cookie",
        // response control data
        "age", "expires", "date", "location", "retry-after", "vary", "warning",
        // how to process the content
        "content-encoding", "content-type", "content-range", "content-location",
    ]

    private static func isProhibitedInTrailers(_ name: UnsafeRawBufferPointer) -> Bool {
        prohibitedInTrailers.contains { ASCII.equalsLowercase(name, $0) }
    }
}
