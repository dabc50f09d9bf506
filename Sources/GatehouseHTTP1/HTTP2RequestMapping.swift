/// An HTTP/2 request's HEADERS mapped onto the request head the HTTP/1.1 side produces, so both go
/// through one dispatcher and one upstream encoder.
public struct HTTP2MappedRequest: Sendable {
    public var head: RequestHead
    /// `:authority`, else the `Host` field.
    public var host: String?
    /// The key the gateway made for an RFC 8441 WebSocket (an extended CONNECT sent upstream as an
    /// HTTP/1.1 upgrade): the upstream's 101 must answer it.
    public var webSocketKey: String?
}

/// Why HEADERS could not be mapped. `malformed` is a stream error of type PROTOCOL_ERROR (RFC 9113
/// §8.1.1); the others are answered.
public enum HTTP2RequestError: Error, Equatable, Sendable {
    case malformed(details: String)
    /// More regular fields than `maxRequestHeaders`: 431, as on HTTP/1.1.
    case tooManyHeaders
    /// A field section larger than `maxRequestHeadersKb` counted as its HTTP/1.1 head would be: 431.
    case headersTooLarge
    /// A CONNECT other than RFC 8441's WebSocket: 501.
    case connectNotServed
}

/// RFC 9113 §8.3's request fields, checked as strictly as the HTTP/1.1 parser checks a head, then turned
/// into that head: pseudo-headers become the request line and `Host`, cookie crumbs are joined
/// (§8.2.3), `content-length` must be one number. NIO's HTTP/2 handler already refuses uppercase names,
/// connection-specific fields and misplaced pseudo-headers; they are checked again here so that this
/// function alone guarantees that what it returns encodes as an unambiguous HTTP/1.1 head (its fuzz
/// target checks exactly that).
public enum HTTP2RequestMapping {
    public static func map<Fields: Sequence>(
        _ fields: Fields, endStream: Bool, limits: HTTP1Limits, makeWebSocketKey: () -> String
    ) throws(HTTP2RequestError) -> HTTP2MappedRequest where Fields.Element == (String, String) {
        var method: String?
        var path: String?
        var authority: String?
        var connectProtocol: String?
        var contentLength: Int64?
        var cookies: [String] = []
        var cookieCrumbs = 0
        var headers = HTTPHeaderBlock()
        var regularFields = 0
        // The size of the HTTP/1.1 head this becomes (`name: value\r\n` per field), so one limit means
        // the same on both protocols.
        var headBytes = 0
        for (name, value) in fields {
            headBytes += name.utf8.count + value.utf8.count + 4
            guard headBytes <= limits.maxHeadBytes else { throw .headersTooLarge }
            guard FieldSyntax.isTrimmed(value), FieldSyntax.isValidValue(value) else {
                throw .malformed(details: "http2.invalid_header_value")
            }
            if name.utf8.first == UInt8(ascii: ":") {
                guard regularFields == 0 else { throw .malformed(details: "http2.pseudo_header_after_regular") }
                switch name {
                case ":method": try set(&method, value)
                case ":path": try set(&path, value)
                case ":authority": try set(&authority, value)
                case ":protocol": try set(&connectProtocol, value)
                case ":scheme": break
                default: throw .malformed(details: "http2.invalid_pseudo_header")
                }
                continue
            }
            regularFields += 1
            guard FieldSyntax.isValidName(name), !name.utf8.contains(where: { $0 &- 0x41 < 26 }) else {
                throw .malformed(details: "http2.invalid_header_name")
            }
            switch HeaderRole.classify(name) {
            case .connection, .transferEncoding, .upgrade:
                throw .malformed(details: "http2.connection_specific_header")
            case .hopByHop where name == "keep-alive" || name == "proxy-connection":
                throw .malformed(details: "http2.connection_specific_header")
            case .hopByHop where name == "te" && value.lowercased() != "trailers":
                throw .malformed(details: "http2.invalid_te")
            case .contentLength:
                guard let length = FieldSyntax.contentLength(value),
                      contentLength == nil || contentLength == length else {
                    throw .malformed(details: "http2.invalid_content_length")
                }
                contentLength = length
                headers.add(name, value)
            default:
                if name == "cookie" {
                    cookieCrumbs += 1
                    // An empty crumb carries nothing; joined, it would leave a trailing "; " that an
                    // HTTP/1.1 upstream reads back as a different value (found by the http2-request fuzzer).
                    if !value.isEmpty { cookies.append(value) }
                } else {
                    headers.add(name, value)
                }
            }
        }
        // Crumbs count as the one field they are joined into, as on HTTP/1.1.
        guard regularFields - max(cookieCrumbs - 1, 0) <= limits.maxHeaderCount else { throw .tooManyHeaders }
        if !cookies.isEmpty { headers.add("cookie", cookies.joined(separator: "; ")) }
        guard var method, FieldSyntax.isValidMethod(method) else { throw .malformed(details: "http2.invalid_method") }
        // A CONNECT without :protocol is a tunnel to :authority (no :path, RFC 9113 §8.5): not served.
        if method == "CONNECT", connectProtocol == nil { throw .connectNotServed }
        guard let path else { throw .malformed(details: "http2.missing_path") }
        // `*` is the target of `OPTIONS *` only (RFC 9113 §8.3.1); any other path is origin-form.
        guard path == "*" ? method == "OPTIONS" : path.utf8.first == UInt8(ascii: "/"),
              FieldSyntax.isValidTarget(path) else { throw .malformed(details: "http2.invalid_path") }
        // :authority wins over a Host field (RFC 9113 §8.3.1).
        let hosts = headers.values("host")
        if let authority {
            guard !authority.isEmpty, FieldSyntax.isValidAuthority(authority) else {
                throw .malformed(details: "http2.invalid_authority")
            }
            headers.remove(role: .host)
            headers.add("host", authority)
        } else if hosts.count > 1 || !hosts.allSatisfy(FieldSyntax.isValidAuthority) {
            throw .malformed(details: "http2.invalid_authority")
        }
        let host = authority ?? hosts.first
        var connection = ConnectionOptions()
        var webSocketKey: String?
        if method == "CONNECT" {
            // Only the extended CONNECT of RFC 8441 is served, and only for WebSocket; it stands for the
            // HTTP/1.1 upgrade sent upstream, for which the gateway makes the key (§5: HTTP/2 has none).
            guard connectProtocol!.lowercased() == "websocket" else { throw .connectNotServed }
            method = "GET"
            connection.upgrade = true
            headers.remove("sec-websocket-key")
            headers.add("upgrade", "websocket")
            let key = makeWebSocketKey()
            headers.add("sec-websocket-key", key)
            webSocketKey = key
        } else if connectProtocol != nil {
            throw .malformed(details: "http2.protocol_without_connect")
        }
        let framing: HTTP1BodyFraming
        if endStream || webSocketKey != nil {
            framing = .none
        } else if let contentLength {
            framing = contentLength > 0 ? .contentLength(contentLength) : .none
        } else {
            framing = .chunked
        }
        let head = RequestHead(method: method, target: path, version: .http1_1, headers: headers,
                                    framing: framing, connection: connection, hostCount: host == nil ? 0 : 1,
                                    expectsContinue: false, declaredContentLength: contentLength)
        return HTTP2MappedRequest(head: head, host: host, webSocketKey: webSocketKey)
    }

    private static func set(_ slot: inout String?, _ value: String) throws(HTTP2RequestError) {
        guard slot == nil else { throw .malformed(details: "http2.duplicate_pseudo_header") }
        slot = value
    }
}
