/// Case-insensitive access to request headers, implemented by the data plane over its own header storage
/// so the router never copies headers.
public protocol HeaderLookup {
    /// Every value of the header `name` (lowercase), in order; empty when absent.
    func values(_ name: String) -> [String]
}

/// What the router looks at in a request. Paths are already normalised by the caller.
public struct RouteInput {
    public var method: String
    /// The path without the query string or fragment.
    public var path: String
    /// The raw query string without the leading `?`, or nil when the request had none.
    public var query: String?
    public var scheme: String
    /// `Host`/`:authority` as received (may include a port).
    public var authority: String
    /// The listener port that accepted the request.
    public var port: Int
    public var headers: any HeaderLookup

    public init(method: String, path: String, query: String?, scheme: String, authority: String, port: Int,
                headers: any HeaderLookup) {
        self.method = method
        self.path = path
        self.query = query
        self.scheme = scheme
        self.authority = authority
        self.port = port
        self.headers = headers
    }

    /// Splits a request target into path and query, dropping any fragment.
    public static func split(target: String) -> (path: String, query: String?) {
        var target = Substring(target)
        if let hash = target.firstIndex(of: "#") { target = target[..<hash] }
        guard let mark = target.firstIndex(of: "?") else { return (String(target), nil) }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }
}

/// A simple `HeaderLookup` over name/value pairs (tests, `explain`).
public struct HeaderList: HeaderLookup, Sendable {
    public var pairs: [(String, String)]
    public init(_ pairs: [(String, String)]) { self.pairs = pairs }
    public func values(_ name: String) -> [String] {
        pairs.filter { $0.0.lowercased() == name }.map(\.1)
    }
}
