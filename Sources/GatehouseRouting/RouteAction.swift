import GatehouseRegex

/// What a matched route does.
public enum RouteAction: Sendable {
    case forward(ForwardAction)
    case redirect(RedirectAction)
    case directResponse(status: Int, body: [UInt8])
}

public struct WeightedDestination: Sendable {
    /// `outbound|PORT|SUBSET|HOST`: the cluster's name, for logs and metrics.
    public var cluster: String
    /// The cluster's index in the snapshot's `clusterList`: how the data plane finds it per request.
    public var clusterIndex: Int
    public var weight: Int
    public var requestHeaders: HeaderMutation
    public var responseHeaders: HeaderMutation

    public init(cluster: String, clusterIndex: Int, weight: Int, requestHeaders: HeaderMutation = .none,
                responseHeaders: HeaderMutation = .none) {
        self.cluster = cluster
        self.clusterIndex = clusterIndex
        self.weight = weight
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
    }
}

public struct ForwardAction: Sendable {
    public var destinations: [WeightedDestination]
    public var rewrite: Rewrite?
    private let totalWeight: Int

    public init(destinations: [WeightedDestination], rewrite: Rewrite? = nil) {
        // A single destination without a weight takes all traffic.
        if destinations.count == 1, destinations[0].weight == 0 {
            self.destinations = [WeightedDestination(cluster: destinations[0].cluster,
                                                     clusterIndex: destinations[0].clusterIndex, weight: 100,
                                                     requestHeaders: destinations[0].requestHeaders,
                                                     responseHeaders: destinations[0].responseHeaders)]
        } else {
            self.destinations = destinations
        }
        self.rewrite = rewrite
        totalWeight = self.destinations.reduce(0) { $0 + $1.weight }
    }

    /// Picks a destination by weight; `draw` is any random number (weight 0 never gets traffic).
    public func pick(draw: UInt64) -> WeightedDestination? {
        guard totalWeight > 0 else { return nil }
        var point = Int(draw % UInt64(totalWeight))
        for destination in destinations {
            if point < destination.weight { return destination }
            point -= destination.weight
        }
        return nil
    }
}

/// `rewrite`: a prefix rewrite of the path (or whole-path for exact/regex matches), a regex rewrite,
/// and/or a new authority.
public struct Rewrite: Sendable {
    public var uri: String?
    public var regex: (CompiledRegex, template: String)?
    public var authority: String?

    public init(uri: String? = nil, regex: (CompiledRegex, template: String)? = nil, authority: String? = nil) {
        self.uri = uri
        self.regex = regex
        self.authority = authority
    }

    /// The new path for a request matched by `match` (nil if the matching entry had no uri).
    public func rewritePath(_ path: String, matchedBy match: RouteMatch?) throws(RegexLimitExceeded) -> String {
        if let (regex, template) = regex {
            // Envoy's regex_rewrite replaces every match anywhere in the path.
            return try regex.replacingMatches(in: path, with: template)
        }
        guard let replacement = uri else { return path }
        switch match?.uri {
        case .prefix(let prefix)?:
            // Envoy replaces the matched prefix; with ignoreUriCase the prefix matched case-insensitively.
            guard path.count >= prefix.count else { return replacement }
            return replacement + path.dropFirst(prefix.count)
        case .exact?, .suffix?, .regex?, .present?:
            return replacement
        case nil:
            // No uri match is Envoy's default prefix "/".
            return replacement + path.dropFirst(1)
        }
    }
}

public struct RedirectAction: Sendable {
    public enum DerivePort: Sendable { case fromProtocolDefault, fromRequestPort }
    public var uri: String?
    public var authority: String?
    public var scheme: String?
    public var port: Int?
    public var derivePort: DerivePort?
    public var code: Int

    public init(uri: String? = nil, authority: String? = nil, scheme: String? = nil, port: Int? = nil,
                derivePort: DerivePort? = nil, code: Int = 301) {
        self.uri = uri
        self.authority = authority
        self.scheme = scheme
        self.port = port
        self.derivePort = derivePort
        self.code = code
    }

    /// The `Location` for `input`: fields the redirect does not set keep the request's values, and the
    /// query string is kept unless the new uri brings its own.
    public func location(for input: RouteInput) -> String {
        let scheme = self.scheme ?? input.scheme
        let (requestHost, requestPort) = Authority.split(input.authority)
        var host = requestHost
        var port = requestPort
        if let authority {
            let (newHost, newPort) = Authority.split(authority)
            host = newHost
            if let newPort { port = newPort }
        }
        if let self_port = self.port {
            port = self_port
        } else if let derivePort {
            switch derivePort {
            case .fromProtocolDefault: port = nil
            case .fromRequestPort: port = input.port
            }
        } else if self.scheme != nil, self.scheme != input.scheme, let current = port, current == 80 || current == 443 {
            // Changing scheme drops the old scheme's default port, as Envoy does.
            port = nil
        }
        if let current = port, (scheme == "http" && current == 80) || (scheme == "https" && current == 443) {
            port = nil
        }
        var path = uri ?? input.path
        if !path.contains("?"), let query = input.query { path += "?\(query)" }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart)\(port.map { ":\($0)" } ?? "")\(path)"
    }
}

/// Host/port handling for `Host`/`:authority` values.
public enum Authority {
    /// Splits `host[:port]` (and `[v6]:port`) into its parts.
    public static func split(_ authority: String) -> (host: String, port: Int?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return (authority, nil) }
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let rest = authority[authority.index(after: close)...]
            if rest.hasPrefix(":"), let port = Int(rest.dropFirst()) { return (host, port) }
            return (host, nil)
        }
        if let colon = authority.lastIndex(of: ":"), authority.firstIndex(of: ":") == colon,
           let port = Int(authority[authority.index(after: colon)...]) {
            return (String(authority[..<colon]), port)
        }
        return (authority, nil)
    }

    /// The form virtual hosts are looked up by: lowercase, no port, no trailing dot.
    public static func normalizedHost(_ authority: String) -> String {
        if let host = lowercaseHost(authority) { return host }
        var host = split(authority).host.lowercased()
        while host.hasSuffix(".") { host.removeLast() }
        return host
    }

    /// The fast path of `normalizedHost`, taken by nearly every request: an authority that is already
    /// lowercase and not an IPv6 literal only needs its port and trailing dots cut. Works on the UTF-8
    /// bytes, as walking Characters costs more than the whole host lookup. Nil: take the slow path.
    private static func lowercaseHost(_ authority: String) -> String? {
        var authority = authority
        let end: Int? = authority.withUTF8 { bytes in
            var colons = 0
            var colon = bytes.count
            for (index, byte) in bytes.enumerated() {
                if byte &- 0x41 < 26 || byte == UInt8(ascii: "[") { return nil }
                if byte == UInt8(ascii: ":") {
                    colons += 1
                    colon = index
                }
            }
            var end = colons == 1 ? colon : bytes.count
            while end > 0, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
            return end
        }
        guard let end else { return nil }
        return end == authority.utf8.count ? authority : String(decoding: authority.utf8.prefix(end), as: UTF8.self)
    }
}
