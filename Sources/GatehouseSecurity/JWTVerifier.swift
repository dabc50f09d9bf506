import Foundation

/// Why a token was refused. The raw values are Envoy's jwt_authn status messages, which it sends as the
/// 401 body and (with `_` for spaces) in `response_code_details`.
public enum JWTFailure: String, Error, Sendable {
    case badFormat = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    case headerNotBase64 = "Jwt header is an invalid Base64url encoded"
    case payloadNotBase64 = "Jwt payload is an invalid Base64url encoded"
    case headerNotJSON = "Jwt header is an invalid JSON"
    case payloadNotJSON = "Jwt payload is an invalid JSON"
    case unsupportedAlgorithm = "Jwt header [alg] is not supported"
    case signatureNotBase64 = "Jwt signature is an invalid Base64url encoded"
    case unknownIssuer = "Jwt issuer is not configured"
    case expired = "Jwt is expired"
    case notYetValid = "Jwt not yet valid"
    case audienceNotAllowed = "Audiences in Jwt are not allowed"
    case noMatchingKey = "Jwks doesn't have key to match kid or alg from Jwt"
    case verificationFailed = "Jwt verification fails"
    case keysUnavailable = "Jwks remote fetch is failed"
    case tooLarge = "Jwt is too large"

    /// `jwt_authn_access_denied{Jwt_is_expired}`.
    public var responseCodeDetails: String {
        "jwt_authn_access_denied{" + rawValue.replacingOccurrences(of: " ", with: "_") + "}"
    }
}

/// A token split and decoded, not yet trusted.
public struct DecodedJWT: Sendable {
    public var algorithm: JWSAlgorithm
    public var kid: String?
    public var claims: [String: JSONValue]
    /// The base64url payload as received (`outputPayloadToHeader` forwards it as is).
    public var encodedPayload: Substring
    var signingInput: Data
    var signature: Data

    public var issuer: String? { claims["iss"]?.stringValue }

    /// Tokens longer than this are refused before any decoding (Envoy's header limit would stop them
    /// anyway; this keeps query-string and cookie tokens bounded too).
    public static let maximumLength = 16 * 1024

    public init(_ token: Substring) throws(JWTFailure) {
        guard token.utf8.count <= Self.maximumLength else { throw .tooLarge }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw .badFormat }
        guard let headerData = Base64URL.decode(parts[0]) else { throw .headerNotBase64 }
        guard let payloadData = Base64URL.decode(parts[1]) else { throw .payloadNotBase64 }
        guard let header = JSONValue.parse(headerData)?.objectValue else { throw .headerNotJSON }
        guard let claims = JSONValue.parse(payloadData)?.objectValue else { throw .payloadNotJSON }
        guard let alg = header["alg"]?.stringValue, let algorithm = JWSAlgorithm(rawValue: alg) else {
            throw .unsupportedAlgorithm
        }
        guard !parts[2].isEmpty, let signature = Base64URL.decode(parts[2]) else { throw .signatureNotBase64 }
        self.algorithm = algorithm
        kid = header["kid"]?.stringValue
        self.claims = claims
        encodedPayload = parts[1]
        signingInput = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        self.signature = signature
    }
}

/// What one `jwtRules` entry checks beyond the signature.
public struct JWTRequirements: Sendable {
    public var issuer: String
    /// Empty: `aud` is not checked (Envoy's behaviour).
    public var audiences: [String]
    /// Clock skew allowed on `exp` and `nbf` (Envoy's default: 60 s).
    public var clockSkew: TimeInterval
    /// Claims whose string value policies match word by word (Istio's `spaceDelimitedClaims`, plus
    /// `scope` and `permission`, which Istio always splits).
    public var spaceDelimitedClaims: Set<String>

    public init(issuer: String, audiences: [String], clockSkew: TimeInterval = 60, spaceDelimitedClaims: [String] = []) {
        self.issuer = issuer
        self.audiences = audiences
        self.clockSkew = clockSkew
        self.spaceDelimitedClaims = JWTIdentity.alwaysSpaceDelimited.union(spaceDelimitedClaims)
    }
}

public enum JWTVerifier {
    /// Verifies `token` against `keys` and the rule; the identity is `iss/sub`. Checks run in Envoy's order
    /// (issuer, time, audience, key, signature) so each refusal carries the message Envoy would send.
    public static func verify(_ token: DecodedJWT, keys: JWKSet, requirements: JWTRequirements,
                              now: Date) throws(JWTFailure) -> JWTIdentity {
        guard token.issuer == requirements.issuer else { throw .unknownIssuer }
        try checkTime(token.claims, now: now, skew: requirements.clockSkew)
        if !requirements.audiences.isEmpty {
            let audiences = token.claims["aud"]?.strings ?? []
            guard audiences.contains(where: requirements.audiences.contains) else { throw .audienceNotAllowed }
        }
        let candidates = keys.keys.filter { key in
            key.accepts(token.algorithm) && (token.kid == nil || key.kid == nil || key.kid == token.kid)
        }
        // With a kid, only keys carrying that kid are tried (a key without one is a wildcard).
        guard !candidates.isEmpty else { throw .noMatchingKey }
        guard candidates.contains(where: { $0.isValidSignature(token.signature, over: token.signingInput, algorithm: token.algorithm) })
        else { throw .verificationFailed }
        let subject = token.claims["sub"]?.stringValue ?? ""
        return JWTIdentity(principal: "\(requirements.issuer)/\(subject)", claims: token.claims,
                           spaceDelimitedClaims: requirements.spaceDelimitedClaims)
    }

    /// `exp` and `nbf` against `now`, with `skew` either way.
    public static func checkTime(_ claims: [String: JSONValue], now: Date, skew: Double) throws(JWTFailure) {
        try TokenLifetime(claims).check(now: now, skew: skew)
    }
}

/// A token's `exp` and `nbf`, read from its claims once: a cached token is checked against them on
/// every request, without looking the claims up again.
public struct TokenLifetime: Sendable {
    public var notAfter: Double?
    public var notBefore: Double?

    public init(_ claims: [String: JSONValue]) throws(JWTFailure) {
        if let exp = claims["exp"] {
            guard let value = exp.numberValue else { throw .payloadNotJSON }
            notAfter = value
        }
        if let nbf = claims["nbf"] {
            guard let value = nbf.numberValue else { throw .payloadNotJSON }
            notBefore = value
        }
    }

    public func check(now: Date, skew: Double) throws(JWTFailure) {
        let seconds = now.timeIntervalSince1970
        if let notAfter, seconds > notAfter + skew { throw .expired }
        if let notBefore, seconds + skew < notBefore { throw .notYetValid }
    }
}
