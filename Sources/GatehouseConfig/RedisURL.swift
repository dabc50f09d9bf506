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
            guard let decodedUser = PercentCoding.decoded(user),
                  let decodedPassword = PercentCoding.decoded(credentials[credentials.index(after: colon)...]) else {
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

    /// The URL as written, its password masked: an error message must not print a secret.
    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at,
              let colon = text[scheme.upperBound..<at].firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }
}
