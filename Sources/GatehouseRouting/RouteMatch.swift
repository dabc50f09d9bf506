import GatehouseRegex

/// One entry of an http route's `match` list: every field set must match (AND).
public struct RouteMatch: Sendable {
    public var uri: StringMatcher?
    public var ignoreUriCase: Bool
    public var scheme: StringMatcher?
    public var method: StringMatcher?
    public var authority: StringMatcher?
    public var headers: [(name: String, matcher: StringMatcher)]
    public var withoutHeaders: [(name: String, matcher: StringMatcher)]
    public var queryParams: [(name: String, matcher: StringMatcher)]
    public var port: Int?

    public init(uri: StringMatcher? = nil, ignoreUriCase: Bool = false, scheme: StringMatcher? = nil,
                method: StringMatcher? = nil, authority: StringMatcher? = nil,
                headers: [(name: String, matcher: StringMatcher)] = [],
                withoutHeaders: [(name: String, matcher: StringMatcher)] = [],
                queryParams: [(name: String, matcher: StringMatcher)] = [], port: Int? = nil) {
        self.uri = uri
        self.ignoreUriCase = ignoreUriCase
        self.scheme = scheme
        self.method = method
        self.authority = authority
        self.headers = headers
        self.withoutHeaders = withoutHeaders
        self.queryParams = queryParams
        self.port = port
    }

    /// Istio sorts catch-all routes last: a prefix `/` (or regex `.*`, or no uri) with nothing else to match.
    public var isCatchAll: Bool {
        guard headers.isEmpty, withoutHeaders.isEmpty, queryParams.isEmpty, scheme == nil, method == nil,
              authority == nil, port == nil else { return false }
        switch uri {
        case nil: return true
        case .prefix("/")?: return true
        case .regex(let regex)?: return regex.pattern == ".*"
        default: return false
        }
    }

    /// Throws when a regex could not decide (its match limit): neither "matches" nor "does not match"
    /// is safe to act on then, least of all under `withoutHeaders`.
    public func matches(_ input: RouteInput) throws(RegexLimitExceeded) -> Bool {
        if let port, port != input.port { return false }
        if let uri, try !uri.matches(input.path, ignoringCase: ignoreUriCase) { return false }
        if let method, try !method.matches(input.method) { return false }
        if let scheme, try !scheme.matches(input.scheme) { return false }
        if let authority, try !authority.matches(input.authority) { return false }
        for (name, matcher) in headers {
            if try !Self.headerMatches(name, matcher, input) { return false }
        }
        // withoutHeaders inverts each check: a header that is absent can never match, so it passes.
        for (name, matcher) in withoutHeaders {
            if try Self.headerMatches(name, matcher, input) { return false }
        }
        if !queryParams.isEmpty {
            let parameters = QueryParameters(input.query)
            for (name, matcher) in queryParams {
                guard let value = parameters.first(name) else { return false }
                if case .exact("") = matcher { continue }  // `exact: ""` means "the key is present"
                if try !matcher.matches(value) { return false }
            }
        }
        return true
    }

    static func headerMatches(_ name: String, _ matcher: StringMatcher, _ input: RouteInput) throws(RegexLimitExceeded) -> Bool {
        let values = pseudoHeader(name, input).map { [$0] } ?? input.headers.values(name)
        guard !values.isEmpty else { return false }
        if case .present = matcher { return true }
        // Every value is checked on its own (CVE-2026-26308): `x-role: user` + `x-role: admin` matches
        // `exact: admin`, and the joined form is never matched against.
        for value in values {
            if try matcher.matches(value) { return true }
        }
        return false
    }

    /// Istio lets header matches name pseudo-headers.
    static func pseudoHeader(_ name: String, _ input: RouteInput) -> String? {
        switch name {
        case ":method": input.method
        case ":path": input.query.map { "\(input.path)?\($0)" } ?? input.path
        case ":authority": input.authority
        case ":scheme": input.scheme
        default: nil
        }
    }
}

/// Reads `a=1&b=2` lazily; values are compared raw (not percent-decoded), as Envoy does.
struct QueryParameters {
    let query: Substring?
    init(_ query: String?) { self.query = query.map { Substring($0) } }

    func first(_ name: String) -> Substring? {
        guard let query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: "=") {
                if pair[..<equals] == name { return pair[pair.index(after: equals)...] }
            } else if pair == name {
                return ""
            }
        }
        return nil
    }
}
