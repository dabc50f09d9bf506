/// Request headers as the policy engine reads them; the data plane implements it over its own storage.
public protocol HeaderValues {
    /// Every value of the header `name` (lowercase), in order; empty when absent.
    func values(_ name: String) -> [String]
    /// Whether some value of `name` (lowercase), as raw bytes, satisfies `test`: lets the data plane
    /// test its header storage in place, with no String per value.
    func containsValue(_ name: String, where test: (UnsafeRawBufferPointer) -> Bool) -> Bool
}

extension HeaderValues {
    public func containsValue(_ name: String, where test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        values(name).contains { value in
            var value = value
            return value.withUTF8 { test(UnsafeRawBufferPointer($0)) }
        }
    }
}

/// Everything an AuthorizationPolicy can look at, for one request (or one TCP connection when `isHTTP`
/// is false). Built by the data plane and by `gatehouse explain` alike.
public struct AuthorizationRequest {
    public var isHTTP: Bool
    public var method: String
    /// The normalized path without the query.
    public var path: String
    /// `Host`/`:authority` as received (`hosts` match it including any port).
    public var host: String
    /// The listener port (`ports`, `destination.port`).
    public var port: Int
    public var headers: any HeaderValues
    /// The direct peer (`ipBlocks`, `source.ip`).
    public var sourceIP: IPAddress?
    /// The client per X-Forwarded-For and `numTrustedProxies` (`remoteIpBlocks`, `remote.ip`).
    public var remoteIP: IPAddress?
    public var destinationIP: IPAddress?
    public var serverName: String?
    /// The peer certificate's identity (URI SAN first) when the client presented one.
    public var peerPrincipal: String?
    /// The verified JWT, when RequestAuthentication accepted one.
    public var jwt: JWTIdentity?

    public init(isHTTP: Bool = true, method: String, path: String, host: String, port: Int, headers: any HeaderValues,
                sourceIP: IPAddress?, remoteIP: IPAddress?, destinationIP: IPAddress? = nil, serverName: String? = nil,
                peerPrincipal: String? = nil, jwt: JWTIdentity? = nil) {
        self.isHTTP = isHTTP
        self.method = method
        self.path = path
        self.host = host
        self.port = port
        self.headers = headers
        self.sourceIP = sourceIP
        self.remoteIP = remoteIP
        self.destinationIP = destinationIP
        self.serverName = serverName
        self.peerPrincipal = peerPrincipal
        self.jwt = jwt
    }
}

/// The identity a verified JWT gives a request.
public struct JWTIdentity: Sendable {
    /// `iss/sub` (`requestPrincipals`, `request.auth.principal`).
    public var principal: String
    public var claims: [String: JSONValue]
    /// Claims (nested ones as `a.b.c`) whose string value is a space-separated list for policy matching
    /// (a `scope` of "read admin" matches a condition on "admin", as in Istio).
    public var spaceDelimitedClaims: Set<String>

    /// Istio splits these whatever `spaceDelimitedClaims` says.
    public static let alwaysSpaceDelimited: Set<String> = ["scope", "permission"]

    public init(principal: String, claims: [String: JSONValue],
                spaceDelimitedClaims: Set<String> = JWTIdentity.alwaysSpaceDelimited) {
        self.principal = principal
        self.claims = claims
        self.spaceDelimitedClaims = spaceDelimitedClaims
    }

    public var audiences: [String] { claims["aud"]?.strings ?? [] }
    public var presenter: String? { claims["azp"]?.stringValue }

    /// The values of a (possibly nested) claim as strings: a string, each string of a list, or a scalar's
    /// text. Objects give nothing: a policy cannot match a whole object.
    public func claim(_ path: [String]) -> [String] {
        lookup(path)?.strings ?? []
    }

    /// Whether some value of the claim (as `claim(_:)` lists them) satisfies `test`, without building
    /// the list for the common string claim.
    public func containsClaim(_ path: [String], where test: (Substring) -> Bool) -> Bool {
        switch lookup(path) {
        case nil: return false
        case .string(let text)? where spaceDelimitedClaims.contains(path.count == 1 ? path[0] : path.joined(separator: ".")):
            return text.split(separator: " ").contains { test($0) }
        case .string(let text)?: return test(text[...])
        case let value?: return value.strings.contains { test($0[...]) }
        }
    }

    func lookup(_ path: [String]) -> JSONValue? {
        guard let first = path.first, var value = claims[first] else { return nil }
        for name in path.dropFirst() {
            guard case .object(let object) = value, let next = object[name] else { return nil }
            value = next
        }
        return value
    }
}

/// A parsed JSON value (JWT claims).
public indirect enum JSONValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    /// Scalars as text; a list's scalar elements.
    public var strings: [String] {
        switch self {
        case .string(let text): [text]
        case .number(let number): [number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)]
        case .bool(let flag): [flag ? "true" : "false"]
        case .array(let items): items.flatMap { item -> [String] in
            if case .array = item { return [] }
            if case .object = item { return [] }
            return item.strings
        }
        case .object, .null: []
        }
    }
}
