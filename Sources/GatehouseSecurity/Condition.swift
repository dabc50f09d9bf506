/// One compiled test of a rule: a field of `from.source` or `to.operation`, or a `when` entry, with its
/// values. A `not…` field is the same test negated: it holds when no value matches, including when the
/// attribute is absent (a plaintext request has no principal, so `notPrincipals` holds; Istio's
/// ISTIO-SECURITY-2021-004 behaviour).
public final class Condition: Sendable {
    public enum Test: Sendable {
        /// The peer identity without `spiffe://`.
        case principals([ValueMatch])
        /// The namespace inside a SPIFFE peer identity (`…/ns/<ns>/…`).
        case namespaces([ValueMatch])
        /// The trust domain of a SPIFFE peer identity (`spiffe://<td>/…`).
        case trustDomains([ValueMatch])
        /// `ns/sa` pairs: exact, no wildcards.
        case serviceAccounts([String])
        case requestPrincipals([ValueMatch])
        case sourceIP([IPBlock])
        case remoteIP([IPBlock])
        case destinationIP([IPBlock])
        /// Lowercased; matched against the lowercased `Host`, port included.
        case hosts([ValueMatch])
        case ports([Int])
        case methods([ValueMatch])
        case paths([PathMatch])
        /// Every value of a repeated header is tested on its own (CVE-2026-26308).
        case header(String, [ValueMatch])
        case claim([String], [ValueMatch])
        case audiences([ValueMatch])
        case presenter([ValueMatch])
        case serverName([ValueMatch])
    }

    public let test: Test
    public let negated: Bool
    /// Where it came from, for `explain`: `from[0].source.notPrincipals`, `when[1] request.headers[x]`.
    public let field: String
    /// Needs an HTTP request (paths, methods, hosts, headers, JWT attributes).
    public let isHTTPOnly: Bool

    public init(_ test: Test, negated: Bool, field: String) {
        self.test = test
        self.negated = negated
        self.field = field
        switch test {
        case .requestPrincipals, .hosts, .methods, .paths, .header, .claim, .audiences, .presenter: isHTTPOnly = true
        default: isHTTPOnly = false
        }
    }

    /// Whether the request's attribute matches some value (before negation). `RuleProgram` runs the
    /// common kinds itself and comes here only for the rare ones.
    func matchesAny(_ request: AuthorizationRequest) -> Bool {
        switch test {
        case .principals(let values):
            guard let principal = request.peerPrincipal, !principal.isEmpty else { return false }
            let bare = SPIFFE.bare(principal)
            return values.contains { value in
                if case .present = value { return true }
                guard let bare else { return false }
                return value.matches(bare)
            }
        case .namespaces(let values):
            guard let namespace = request.peerPrincipal.flatMap(SPIFFE.namespace) else { return false }
            return values.contains { $0.matches(namespace) }
        case .trustDomains(let values):
            guard let domain = request.peerPrincipal.flatMap(SPIFFE.trustDomain) else { return false }
            return values.contains { $0.matches(domain) }
        case .serviceAccounts(let accounts):
            guard let principal = request.peerPrincipal, let namespace = SPIFFE.namespace(principal),
                  let account = SPIFFE.serviceAccount(principal) else { return false }
            return accounts.contains { $0 == "\(namespace)/\(account)" }
        case .requestPrincipals(let values):
            guard let principal = request.jwt?.principal else { return false }
            return values.contains { $0.matches(principal) }
        case .sourceIP(let blocks):
            guard let address = request.sourceIP else { return false }
            return blocks.contains { $0.contains(address) }
        case .remoteIP(let blocks):
            guard let address = request.remoteIP else { return false }
            return blocks.contains { $0.contains(address) }
        case .destinationIP(let blocks):
            guard let address = request.destinationIP else { return false }
            return blocks.contains { $0.contains(address) }
        case .hosts(let values):
            guard request.isHTTP else { return false }
            let host = ASCIICase.lowercased(request.host)
            return values.contains { $0.matches(host) }
        case .ports(let ports):
            return ports.contains(request.port)
        case .methods(let values):
            return request.isHTTP && values.contains { $0.matches(request.method) }
        case .paths(let values):
            return request.isHTTP && values.contains { $0.matches(request.path) }
        case .header(let name, let values):
            guard request.isHTTP else { return false }
            return request.headers.containsValue(name) { header in values.contains { $0.matches(bytes: header) } }
        case .claim(let path, let values):
            guard let jwt = request.jwt else { return false }
            return jwt.containsClaim(path) { claim in values.contains { $0.matches(claim) } }
        case .audiences(let values):
            guard let jwt = request.jwt else { return false }
            return jwt.audiences.contains { audience in values.contains { $0.matches(audience) } }
        case .presenter(let values):
            guard let presenter = request.jwt?.presenter else { return false }
            return values.contains { $0.matches(presenter) }
        case .serverName(let values):
            guard let name = request.serverName else { return false }
            return values.contains { $0.matches(name) }
        }
    }
}

/// SPIFFE identities: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
public enum SPIFFE {
    /// The identity without `spiffe://`, as Istio writes principals; nil for other identities.
    public static func bare(_ principal: String) -> Substring? {
        principal.hasPrefix("spiffe://") ? principal.dropFirst("spiffe://".count) : nil
    }

    public static func namespace(_ principal: String) -> Substring? { component(after: "ns", in: principal) }

    /// `spiffe://<trust-domain>/…` → `<trust-domain>` (non-empty, followed by a path).
    public static func trustDomain(_ principal: String) -> Substring? {
        guard let bare = bare(principal), let slash = bare.firstIndex(of: "/"), slash != bare.startIndex else { return nil }
        return bare[..<slash]
    }
    public static func serviceAccount(_ principal: String) -> Substring? { component(after: "sa", in: principal) }

    static func component(after label: String, in principal: String) -> Substring? {
        guard let bare = bare(principal) else { return nil }
        let parts = bare.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1] == "ns", parts[3] == "sa" else { return nil }
        return label == "ns" ? parts[2] : parts[4]
    }
}
