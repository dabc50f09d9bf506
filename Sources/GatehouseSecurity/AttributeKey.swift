/// A `when` condition key, as Istio spells it. Parsing is shared by config validation (which reports a
/// bad key at its line) and the policy compiler.
public enum AttributeKey: Sendable, Hashable {
    case requestHeader(String)
    case sourceIP
    case remoteIP
    case sourceNamespace
    case sourceTrustDomain
    case sourcePrincipal
    case requestPrincipal
    case requestAudiences
    case requestPresenter
    /// `request.auth.claims[a][b]`: the path into nested claims.
    case requestClaim([String])
    case destinationIP
    case destinationPort
    case connectionSNI

    /// The keys Istio supports at a gateway (istio.io reference/config/security/conditions).
    public static let simpleKeys: [String: AttributeKey] = [
        "source.ip": .sourceIP, "remote.ip": .remoteIP, "source.namespace": .sourceNamespace,
        "source.trustDomain": .sourceTrustDomain,
        "source.principal": .sourcePrincipal, "request.auth.principal": .requestPrincipal,
        "request.auth.audiences": .requestAudiences, "request.auth.presenter": .requestPresenter,
        "destination.ip": .destinationIP, "destination.port": .destinationPort, "connection.sni": .connectionSNI,
    ]

    public static let spellings = simpleKeys.keys.sorted() + ["request.headers[NAME]", "request.auth.claims[NAME]"]

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case unknown(String)
        case malformed(String, String)

        public var description: String {
            switch self {
            case .unknown(let key):
                "unknown condition key \"\(key)\"; supported keys: " + AttributeKey.spellings.joined(separator: ", ")
            case .malformed(let key, let why): "malformed condition key \"\(key)\": \(why)"
            }
        }
    }

    public init(istio key: String) throws(Problem) {
        if let simple = Self.simpleKeys[key] {
            self = simple
            return
        }
        if key.hasPrefix("request.headers") {
            let names = try Self.brackets(String(key.dropFirst("request.headers".count)), key: key)
            guard names.count == 1 else { throw .malformed(key, "expected exactly one header name in brackets") }
            self = .requestHeader(ASCIICase.lowercased(names[0]))
            return
        }
        if key.hasPrefix("request.auth.claims") {
            self = .requestClaim(try Self.brackets(String(key.dropFirst("request.auth.claims".count)), key: key))
            return
        }
        throw .unknown(key)
    }

    /// `[a][b]` → `["a", "b"]`; every name non-empty, nothing outside the brackets.
    static func brackets(_ text: String, key: String) throws(Problem) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        guard !rest.isEmpty else { throw .malformed(key, "missing [NAME]") }
        while !rest.isEmpty {
            guard rest.first == "[", let close = rest.firstIndex(of: "]") else {
                throw .malformed(key, "expected [NAME] after the attribute")
            }
            let name = rest[rest.index(after: rest.startIndex)..<close]
            guard !name.isEmpty, !name.contains("[") else { throw .malformed(key, "empty or nested name in brackets") }
            names.append(String(name))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Keys only an HTTP request carries: on a TCP connection an ALLOW rule using them is dropped and a
    /// DENY rule ignores them (Istio's TCP filter semantics).
    public var isHTTPOnly: Bool {
        switch self {
        case .requestHeader, .requestPrincipal, .requestAudiences, .requestPresenter, .requestClaim: true
        default: false
        }
    }

    /// Keys whose values are IPs or CIDRs, and the port key whose values are numbers.
    public var takesIPBlocks: Bool { self == .sourceIP || self == .remoteIP || self == .destinationIP }
}
