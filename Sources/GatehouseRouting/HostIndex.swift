/// Host patterns (`a.example.com`, `*.example.com`, `*`) mapped to values, looked up the way Envoy picks
/// a virtual host or a TLS filter chain: the exact host first, then the longest matching `*.suffix`,
/// then `*`. Patterns and lookups are case-insensitive; the first value given for a pattern wins.
public struct HostIndex<Value: Sendable>: Sendable {
    private var exact: [String: Value] = [:]
    /// Keyed by the suffix after `*.`.
    private var wildcard: [String: Value] = [:]
    public private(set) var any: Value?

    public init() {}

    public init(_ entries: [(pattern: String, value: Value)]) {
        for (pattern, value) in entries { insert(pattern, value) }
    }

    public mutating func insert(_ pattern: String, _ value: Value) {
        let pattern = pattern.lowercased()
        if pattern == "*" {
            if any == nil { any = value }
        } else if pattern.hasPrefix("*.") {
            let suffix = String(pattern.dropFirst(2))
            if wildcard[suffix] == nil { wildcard[suffix] = value }
        } else if exact[pattern] == nil {
            exact[pattern] = value
        }
    }

    public var isEmpty: Bool { exact.isEmpty && wildcard.isEmpty && any == nil }

    public var values: [Value] { Array(exact.values) + Array(wildcard.values) + (any.map { [$0] } ?? []) }

    /// The value for `host`, which must already be lowercase without port (see `Authority.normalizedHost`).
    public func lookup(normalized host: String) -> Value? {
        if let match = exact[host] { return match }
        if !wildcard.isEmpty {
            // Walk the labels left to right: the first suffix found is the longest. `*.a.com` does not
            // match `a.com` itself, as in Istio.
            var rest = Substring(host)
            while let dot = rest.utf8.firstIndex(of: UInt8(ascii: ".")) {
                rest = rest[rest.index(after: dot)...]
                if let match = wildcard[String(rest)] { return match }
            }
        }
        return any
    }

    public func lookup(_ host: String) -> Value? { lookup(normalized: Authority.normalizedHost(host)) }
}
