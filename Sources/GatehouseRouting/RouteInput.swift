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

    /// The first value of query parameter `name`, raw (not percent-decoded), as route matches read it;
    /// "" for a bare `name`, nil when absent.
    public func queryValue(_ name: String) -> Substring? {
        QueryParameters(query).first(name)
    }

    /// Splits a request target into path and query, dropping any fragment.
    public static func split(target: String) -> (path: String, query: String?) {
        // On the UTF-8 bytes: `?` and `#` are ASCII, and Character-by-Character scanning cost a tenth of
        // a request's routing.
        let utf8 = target.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.endIndex
        guard let mark = utf8[..<end].firstIndex(of: UInt8(ascii: "?")) else {
            return (end == utf8.endIndex ? target : String(Substring(utf8[..<end])), nil)
        }
        return (String(Substring(utf8[..<mark])), String(Substring(utf8[utf8.index(after: mark)..<end])))
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
