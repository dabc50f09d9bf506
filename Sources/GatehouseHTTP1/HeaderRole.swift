/// The header names the proxy treats specially, recognised once when a head is parsed so that later
/// passes (forwarding, logging, framing) switch on a byte instead of comparing names again.
public enum HeaderRole: UInt8, Sendable {
    case other
    case host, userAgent, forwardedFor, forwardedProto, requestID, expect
    case contentLength, transferEncoding, connection, upgrade
    /// TE, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization (RFC 9110 §7.6.1).
    case hopByHop
    /// `x-envoy-*`, which only the gateway itself may set (CVE-2023-27487).
    case envoyInternal
    case server, upstreamServiceTime
    /// `x-forwarded-client-cert`: set (or removed) by the gateway per `forwardClientCertDetails`.
    case forwardedClientCert
    /// `x-ratelimit-limit`, `-remaining`, `-reset`: replaced on a response whose route's rate limit
    /// reports its own.
    case rateLimit

    /// The fields that delimit a message: the gateway regenerates them, never forwards them as sent.
    public var isFraming: Bool { self == .contentLength || self == .transferEncoding }

    /// Classifies a header name given as raw bytes, in any case.
    public static func classify(_ name: UnsafeRawBufferPointer) -> HeaderRole {
        switch name.count {
        case 2: return ASCII.equalsLowercase(name, "te") ? .hopByHop : other(name)
        case 4: return ASCII.equalsLowercase(name, "host") ? .host : other(name)
        case 6:
            if ASCII.equalsLowercase(name, "expect") { return .expect }
            return ASCII.equalsLowercase(name, "server") ? .server : other(name)
        case 7: return ASCII.equalsLowercase(name, "upgrade") ? .upgrade : other(name)
        case 10:
            if ASCII.equalsLowercase(name, "connection") { return .connection }
            if ASCII.equalsLowercase(name, "keep-alive") { return .hopByHop }
            return ASCII.equalsLowercase(name, "user-agent") ? .userAgent : other(name)
        case 12: return ASCII.equalsLowercase(name, "x-request-id") ? .requestID : other(name)
        case 14: return ASCII.equalsLowercase(name, "content-length") ? .contentLength : other(name)
        case 15: return ASCII.equalsLowercase(name, "x-forwarded-for") ? .forwardedFor : other(name)
        case 16: return ASCII.equalsLowercase(name, "proxy-connection") ? .hopByHop : other(name)
        case 17:
            if ASCII.equalsLowercase(name, "x-forwarded-proto") { return .forwardedProto }
            if ASCII.equalsLowercase(name, "transfer-encoding") { return .transferEncoding }
            if ASCII.equalsLowercase(name, "x-ratelimit-limit") || ASCII.equalsLowercase(name, "x-ratelimit-reset") {
                return .rateLimit
            }
            return other(name)
        case 18: return ASCII.equalsLowercase(name, "proxy-authenticate") ? .hopByHop : other(name)
        case 19: return ASCII.equalsLowercase(name, "proxy-authorization") ? .hopByHop : other(name)
        case 21: return ASCII.equalsLowercase(name, "x-ratelimit-remaining") ? .rateLimit : other(name)
        case 23:
            return ASCII.equalsLowercase(name, "x-forwarded-client-cert") ? .forwardedClientCert : other(name)
        case 29:
            return ASCII.equalsLowercase(name, "x-envoy-upstream-service-time") ? .upstreamServiceTime : other(name)
        default: return other(name)
        }
    }

    public static func classify(_ name: String) -> HeaderRole {
        var name = name
        return name.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
    }

    private static func other(_ name: UnsafeRawBufferPointer) -> HeaderRole {
        ASCII.hasLowercasePrefix(name, "x-envoy-") ? .envoyInternal : .other
    }
}
