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
    public var responseFlags: String = "-"
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
    public var ratelimit: String?
    public var tlsVersion: String?

    public init() {}

    /// The JSON object and a trailing newline.
    public func jsonLine() -> String {
        var out = JSONLineWriter()
        out.field("start_time", .string(Timestamp.iso8601(millis: startTimeMillis)))
        out.field("method", method.map(JSONValue.string) ?? .null)
        out.field("path", path.map(JSONValue.string) ?? .null)
        out.field("protocol", self.protocol.map(JSONValue.string) ?? .null)
        out.field("response_code", .int(Int64(responseCode)))
        out.field("response_flags", .string(responseFlags))
        out.field("response_code_details", responseCodeDetails.map(JSONValue.string) ?? .null)
        out.field("connection_termination_details", connectionTerminationDetails.map(JSONValue.string) ?? .null)
        out.field("upstream_transport_failure_reason", upstreamTransportFailureReason.map(JSONValue.string) ?? .null)
        out.field("bytes_received", .int(Int64(bytesReceived)))
        out.field("bytes_sent", .int(Int64(bytesSent)))
        out.field("duration", .int(durationMillis))
        out.field("upstream_service_time", upstreamServiceTimeMillis.map(JSONValue.int) ?? .null)
        out.field("x_forwarded_for", xForwardedFor.map(JSONValue.string) ?? .null)
        out.field("user_agent", userAgent.map(JSONValue.string) ?? .null)
        out.field("request_id", requestID.map(JSONValue.string) ?? .null)
        out.field("authority", authority.map(JSONValue.string) ?? .null)
        out.field("upstream_host", upstreamHost.map(JSONValue.string) ?? .null)
        out.field("upstream_cluster", upstreamCluster.map(JSONValue.string) ?? .null)
        out.field("upstream_local_address", upstreamLocalAddress.map(JSONValue.string) ?? .null)
        out.field("downstream_local_address", downstreamLocalAddress.map(JSONValue.string) ?? .null)
        out.field("downstream_remote_address", downstreamRemoteAddress.map(JSONValue.string) ?? .null)
        out.field("requested_server_name", requestedServerName.map(JSONValue.string) ?? .null)
        out.field("route_name", routeName.map(JSONValue.string) ?? .null)
        out.field("source_principal", sourcePrincipal.map(JSONValue.string) ?? .null)
        out.field("request_principal", requestPrincipal.map(JSONValue.string) ?? .null)
        out.field("authz_policy", authzPolicy.map(JSONValue.string) ?? .null)
        out.field("ratelimit", ratelimit.map(JSONValue.string) ?? .null)
        out.field("tls_version", tlsVersion.map(JSONValue.string) ?? .null)
        return out.finish()
    }
}

enum JSONValue {
    case string(String)
    case int(Int64)
    case null
}

/// Builds one JSON object. Strings are escaped so a hostile header (CR/LF, quotes, control bytes) can
/// never split or forge a log line (ISTIO-SECURITY-2024-005).
struct JSONLineWriter {
    private var text = "{"
    private var first = true

    init() { text.reserveCapacity(640) }

    mutating func field(_ name: String, _ value: JSONValue) {
        if !first { text += "," }
        first = false
        text += "\""
        text += name
        text += "\":"
        switch value {
        case .null: text += "null"
        case .int(let number): text += String(number)
        case .string(let string): Self.appendQuoted(string, to: &text)
        }
    }

    mutating func finish() -> String {
        text += "}\n"
        return text
    }

    static func appendQuoted(_ string: String, to text: inout String) {
        text += "\""
        var plainStart = string.utf8.startIndex
        var index = plainStart
        let utf8 = string.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == 0x22 || byte == 0x5C || byte < 0x20 || byte == 0x7F {
                text += String(string[plainStart..<index])
                switch byte {
                case 0x22: text += "\\\""
                case 0x5C: text += "\\\\"
                case 0x0A: text += "\\n"
                case 0x0D: text += "\\r"
                case 0x09: text += "\\t"
                default:
                    let hex = String(byte, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                plainStart = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        text += String(string[plainStart..<utf8.endIndex])
        text += "\""
    }
}
