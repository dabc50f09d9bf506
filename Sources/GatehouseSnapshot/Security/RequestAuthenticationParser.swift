import Foundation
import GatehouseConfig
import GatehouseSecurity

/// A RequestAuthentication read once into the JWT rules the authenticator runs, with everything wrong
/// with it. Every rule must be able to verify something, so a typo never turns into "tokens are not
/// checked"; validation and compilation are this one pass, so an inline `jwks` that does not parse is an
/// error, never a rule quietly left out. (`selector`/`targetRef` are checked with the model.)
enum RequestAuthenticationParser {
    static func parse(_ resource: Resource<RequestAuthenticationSpec>) -> ([JWTRule], [Diagnostic]) {
        var out: [Diagnostic] = []
        var rules: [JWTRule] = []
        var issuers: [String: Int] = [:]
        for (index, rule) in (resource.spec.jwtRules ?? []).enumerated() {
            let path = "spec.jwtRules[\(index)]"
            var keys: JWTKeySource?
            if rule.issuer.isEmpty { out.append(resource.diagnostic("\(path).issuer", "issuer must not be empty")) }
            if let first = issuers[rule.issuer] {
                out.append(resource.diagnostic("\(path).issuer",
                    "issuer \"\(rule.issuer)\" is already used by jwtRules[\(first)]; a token picks its rule by issuer"))
            } else {
                issuers[rule.issuer] = index
            }
            switch (rule.jwks, rule.jwksUri) {
            case (.some, .some):
                out.append(resource.diagnostic("\(path).jwks", "set jwks or jwksUri, not both"))
            case (.some(let jwks), nil):
                do {
                    keys = .inline(try JWKSet(json: jwks))
                } catch {
                    out.append(resource.diagnostic("\(path).jwks", "jwks does not parse: \(error.description)"))
                }
            case (nil, .some(let uri)):
                if let problem = uriProblem(uri) { out.append(resource.diagnostic("\(path).jwksUri", problem)) }
                keys = .remote(uri)
            case (nil, nil):
                // OpenID discovery: ISSUER/.well-known/openid-configuration names the keys.
                if let problem = discoveryProblem(rule.issuer) {
                    out.append(resource.diagnostic("\(path).issuer", "with neither jwks nor jwksUri the keys are found by "
                        + "OpenID discovery from the issuer, which needs an http(s) URL: \(problem)"))
                }
                keys = .discovery(issuer: rule.issuer)
            }
            for (headerIndex, header) in (rule.fromHeaders ?? []).enumerated() where !isToken(header.name) {
                out.append(resource.diagnostic("\(path).fromHeaders[\(headerIndex)].name", "invalid header name \"\(header.name)\""))
            }
            for (paramIndex, name) in (rule.fromParams ?? []).enumerated() where name.isEmpty {
                out.append(resource.diagnostic("\(path).fromParams[\(paramIndex)]", "empty parameter name"))
            }
            for (cookieIndex, name) in (rule.fromCookies ?? []).enumerated() where !isToken(name) {
                out.append(resource.diagnostic("\(path).fromCookies[\(cookieIndex)]", "invalid cookie name \"\(name)\""))
            }
            if let header = rule.outputPayloadToHeader, !isToken(header) {
                out.append(resource.diagnostic("\(path).outputPayloadToHeader", "invalid header name \"\(header)\""))
            }
            for (claimIndex, output) in (rule.outputClaimToHeaders ?? []).enumerated() {
                if !isToken(output.header) {
                    out.append(resource.diagnostic("\(path).outputClaimToHeaders[\(claimIndex)].header",
                                                   "invalid header name \"\(output.header)\""))
                }
                if output.claim.isEmpty {
                    out.append(resource.diagnostic("\(path).outputClaimToHeaders[\(claimIndex)].claim", "claim must not be empty"))
                }
            }
            guard let keys else { continue }  // both jwks and jwksUri, or jwks that does not parse: refused above
            var locations: [TokenLocation] = (rule.fromHeaders ?? []).map {
                .header($0.name.lowercased(), prefix: $0.prefix ?? "")
            }
            locations += (rule.fromParams ?? []).map { .param($0) }
            locations += (rule.fromCookies ?? []).map { .cookie($0) }
            rules.append(JWTRule(
                requirements: JWTRequirements(issuer: rule.issuer, audiences: rule.audiences ?? [],
                                              spaceDelimitedClaims: rule.spaceDelimitedClaims ?? []),
                locations: locations, keys: keys, forwardOriginalToken: rule.forwardOriginalToken ?? false,
                outputPayloadToHeader: rule.outputPayloadToHeader.map { $0.lowercased() },
                outputClaimToHeaders: (rule.outputClaimToHeaders ?? []).map {
                    (header: $0.header.lowercased(), claim: $0.claim.split(separator: ".").map(String.init))
                },
                label: "\(resource.id)[jwtRules \(index)]",
                fetchTimeout: rule.timeout.map { Double($0.nanoseconds) / 1e9 } ?? 5))
        }
        return (rules, out)
    }

    /// `file:///abs/path` (offline use) or an http(s) URL with a host.
    static func uriProblem(_ uri: String) -> String? {
        guard let url = URL(string: uri), let scheme = url.scheme?.lowercased() else { return "invalid URI \"\(uri)\"" }
        switch scheme {
        case "file":
            return url.path.hasPrefix("/") ? nil : "a file URI needs an absolute path: file:///path/to/jwks.json"
        case "http", "https":
            return (url.host ?? "").isEmpty ? "URI \"\(uri)\" has no host" : nil
        default:
            return "unsupported scheme \"\(scheme)\"; expected https, http or file"
        }
    }

    static func discoveryProblem(_ issuer: String) -> String? {
        guard !issuer.isEmpty else { return nil }  // reported as an empty issuer
        guard let url = URL(string: issuer), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http" else {
            return "\"\(issuer)\" is not an http(s) URL"
        }
        return (url.host ?? "").isEmpty ? "\"\(issuer)\" has no host" : nil
    }

    /// RFC 9110 token characters.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
