/// Where the `redis` rate-limit store connects: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or
/// `rediss://` for TLS. The forms redis-cli and every Redis client library read; anything else (a query
/// string, a path that is not a database number, a port out of range) is refused rather than guessed at.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    /// ACL user (Redis 6+); nil: AUTH with the password alone (the `default` user).
    public var username: String?
    public var password: String?
    public var database: Int

    public init(tls: Bool = false, host: String, port: Int = 6379, username: String? = nil, password: String? = nil,
                database: Int = 0) {
        self.tls = tls
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// The URL without its password, for logs and `/config_dump`.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        let named = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "rediss" : "redis")://\(credentials)\(named):\(port)/\(database)"
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> RedisURL {
        func fail(_ why: String) -> ParseError {
            ParseError(description: "expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://…, got \"\(redacted(text))\": \(why)")
        }
        let tls: Bool
        var rest: Substring
        if text.hasPrefix("redis://") {
            tls = false
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("rediss://") {
            tls = true
            rest = text.dropFirst("rediss://".count)
        } else {
            throw fail("the scheme must be redis or rediss")
        }
        if rest.contains("?") || rest.contains("#") { throw fail("query strings and fragments are not read") }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = credentials.firstIndex(of: ":") else {
                throw fail("credentials must be USER:PASSWORD or :PASSWORD")
            }
            let user = credentials[..<colon]
            guard let decodedUser = percentDecoded(user),
                  let decodedPassword = percentDecoded(credentials[credentials.index(after: colon)...]) else {
                throw fail("a malformed %-escape in the credentials")
            }
            username = user.isEmpty ? nil : decodedUser
            password = decodedPassword
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0, number <= 65535 else { throw fail("the path must be a database number") }
                database = number
            }
        }
        var host: Substring
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("an IPv6 address without its closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw fail("unexpected text after the IPv6 address") }
                rest = rest.dropFirst()
                guard let number = Int(rest), number > 0, number <= 65535 else { throw fail("the port must be 1-65535") }
                port = number
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let number = Int(rest[rest.index(after: colon)...]), number > 0, number <= 65535 else {
                throw fail("the port must be 1-65535")
            }
            port = number
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw fail("no host") }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" }) else {
            throw fail("the host is not a name or an address")
        }
        return RedisURL(tls: tls, host: String(host), port: port, username: username, password: password, database: database)
    }

    /// `%XX` escapes decoded (a password may hold `@`, `:` or `/`); nil on a malformed escape.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The URL as written, its password masked: an error message must not print a secret.
    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at,
              let colon = text[scheme.upperBound..<at].firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }
}
