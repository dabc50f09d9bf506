/// Header-name comparisons without allocating: names arrive in any case and are compared to lowercase
/// constants byte by byte. These run for every header of every request.
enum HeaderName {
    static func equals(_ name: String, _ lowercase: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
            let expected = lowercase.utf8Start
            for index in 0..<bytes.count where lower(bytes[index]) != expected[index] { return false }
            return true
        }
    }

    static func hasPrefix(_ name: String, _ lowercase: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard bytes.count >= lowercase.utf8CodeUnitCount else { return false }
            let expected = lowercase.utf8Start
            for index in 0..<lowercase.utf8CodeUnitCount where lower(bytes[index]) != expected[index] { return false }
            return true
        }
    }

    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

    /// The headers the proxy itself treats specially, recognised in one comparison pass.
    enum Role {
        case host, userAgent, forwardedFor, forwardedProto, requestID, expect, contentLength, transferEncoding
        case connection, hopByHop, envoyInternal, server, upstreamServiceTime, other
    }

    static func role(_ name: String) -> Role {
        switch name.utf8.count {
        case 2: return equals(name, "te") ? .hopByHop : other(name)
        case 4: return equals(name, "host") ? .host : other(name)
        case 6:
            if equals(name, "expect") { return .expect }
            return equals(name, "server") ? .server : other(name)
        case 7: return equals(name, "upgrade") ? .hopByHop : other(name)
        case 10:
            if equals(name, "connection") { return .connection }
            if equals(name, "keep-alive") { return .hopByHop }
            return equals(name, "user-agent") ? .userAgent : other(name)
        case 12: return equals(name, "x-request-id") ? .requestID : other(name)
        case 14: return equals(name, "content-length") ? .contentLength : other(name)
        case 15: return equals(name, "x-forwarded-for") ? .forwardedFor : other(name)
        case 16: return equals(name, "proxy-connection") ? .hopByHop : other(name)
        case 17:
            if equals(name, "x-forwarded-proto") { return .forwardedProto }
            return equals(name, "transfer-encoding") ? .transferEncoding : other(name)
        case 18: return equals(name, "proxy-authenticate") ? .hopByHop : other(name)
        case 19: return equals(name, "proxy-authorization") ? .hopByHop : other(name)
        case 29: return equals(name, "x-envoy-upstream-service-time") ? .upstreamServiceTime : other(name)
        default: return other(name)
        }
    }

    private static func other(_ name: String) -> Role {
        hasPrefix(name, "x-envoy-") ? .envoyInternal : .other
    }
}
