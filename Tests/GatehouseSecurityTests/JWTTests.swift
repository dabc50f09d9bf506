import Crypto
import _CryptoExtras
import Foundation
import GatehouseSecurity
import Testing

/// Signing keys made by the test, and tokens signed with them by hand (no JWT library in between).
struct TestSigner: @unchecked Sendable {
    enum Key {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    var key: Key
    var kid: String

    static let rsa = TestSigner(key: .rsa(try! _RSA.Signing.PrivateKey(keySize: .bits2048)), kid: "rsa-1")
    static let p256 = TestSigner(key: .p256(P256.Signing.PrivateKey()), kid: "ec-1")
    static let ed25519 = TestSigner(key: .ed25519(Curve25519.Signing.PrivateKey()), kid: "ed-1")

    var jwk: [String: String] {
        switch key {
        case .rsa(let key):
            let primitives = try! key.publicKey.getKeyPrimitives()
            return ["kty": "RSA", "kid": kid, "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent)]
        case .p256(let key):
            let raw = key.publicKey.rawRepresentation
            return ["kty": "EC", "crv": "P-256", "kid": kid, "x": Base64URL.encode(raw.prefix(32)), "y": Base64URL.encode(raw.suffix(32))]
        case .ed25519(let key):
            return ["kty": "OKP", "crv": "Ed25519", "kid": kid, "x": Base64URL.encode(key.publicKey.rawRepresentation)]
        }
    }

    static func jwks(_ signers: [TestSigner]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: ["keys": signers.map(\.jwk)], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    func token(_ claims: [String: Any], alg: String? = nil, kid: String?? = .none) -> String {
        let algorithm = alg ?? defaultAlgorithm
        var header: [String: Any] = ["alg": algorithm, "typ": "JWT"]
        switch kid {
        case .none: header["kid"] = self.kid
        case .some(.none): break
        case .some(.some(let value)): header["kid"] = value
        }
        let head = Base64URL.encode(try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        let body = Base64URL.encode(try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        let input = Data("\(head).\(body)".utf8)
        let signature: Data
        switch key {
        case .rsa(let key):
            let padding: _RSA.Signing.Padding = algorithm.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
            signature = try! key.signature(for: SHA256.hash(data: input), padding: padding).rawRepresentation
        case .p256(let key): signature = try! key.signature(for: input).rawRepresentation
        case .ed25519(let key): signature = try! key.signature(for: input)
        }
        return "\(head).\(body).\(Base64URL.encode(signature))"
    }

    var defaultAlgorithm: String {
        switch key {
        case .rsa: "RS256"
        case .p256: "ES256"
        case .ed25519: "EdDSA"
        }
    }
}

struct StaticKeys: JWKSProvider {
    var loaded: [String: JWKSet] = [:]
    func keys(for uri: String) -> JWKSet? { loaded[uri] }
}

@Suite struct JWTVerificationTests {
    static let issuer = "https://idp.example.com"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let keys = try! JWKSet(json: TestSigner.jwks([.rsa, .p256, .ed25519]))

    func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
        var claims: [String: Any] = ["iss": Self.issuer, "sub": "alice", "aud": "api", "exp": 1_800_000_600]
        for (key, value) in extra { claims[key] = value }
        return claims
    }

    func verify(_ token: String, audiences: [String] = ["api"]) throws(JWTFailure) -> JWTIdentity {
        let decoded = try DecodedJWT(Substring(token))
        return try JWTVerifier.verify(decoded, keys: Self.keys,
                                      requirements: JWTRequirements(issuer: Self.issuer, audiences: audiences), now: Self.now)
    }

    func failure(_ token: String, audiences: [String] = ["api"]) -> JWTFailure? {
        do {
            _ = try verify(token, audiences: audiences)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [("RS256", TestSigner.rsa), ("PS256", TestSigner.rsa), ("ES256", TestSigner.p256), ("EdDSA", TestSigner.ed25519)])
    func everySupportedAlgorithmVerifies(alg: String, signer: TestSigner) throws {
        let identity = try verify(signer.token(claims(), alg: alg))
        #expect(identity.principal == "https://idp.example.com/alice")
    }

    @Test func aTokenWithoutKidTriesEveryKeyOfItsAlgorithm() throws {
        #expect(try verify(TestSigner.p256.token(claims(), kid: .some(nil))).principal.hasSuffix("/alice"))
    }

    @Test func refusals() {
        let rsa = TestSigner.rsa
        let other = TestSigner(key: .p256(P256.Signing.PrivateKey()), kid: "ec-1")
        #expect(failure(rsa.token(claims(["exp": 1_800_000_000 - 61]))) == .expired)
        #expect(failure(rsa.token(claims(["exp": 1_800_000_000 - 59]))) == nil, "60 s of clock skew")
        #expect(failure(rsa.token(claims(["nbf": 1_800_000_100]))) == .notYetValid)
        #expect(failure(rsa.token(claims(["aud": ["web", "mobile"]]))) == .audienceNotAllowed)
        #expect(failure(rsa.token(claims(["aud": ["web", "api"]]))) == nil)
        #expect(failure(rsa.token(claims(["aud": "web"])), audiences: []) == nil, "no audiences configured: aud is not checked")
        #expect(failure(rsa.token(claims(["iss": "https://evil.example.com"]))) == .unknownIssuer)
        #expect(failure(rsa.token(claims(), kid: "unknown")) == .noMatchingKey)
        #expect(failure(other.token(claims())) == .verificationFailed, "same kid, another key")
        #expect(failure(rsa.token(claims(), alg: "ES256")) == .noMatchingKey, "an RSA key cannot check ES256")
        #expect(failure(rsa.token(claims(["exp": "tomorrow"]))) == .payloadNotJSON)
    }

    @Test func tamperedAndMalformedTokens() {
        let token = TestSigner.rsa.token(claims())
        let parts = token.split(separator: ".").map(String.init)
        let forgedBody = Base64URL.encode(Data(#"{"iss":"https://idp.example.com","sub":"admin","aud":"api"}"#.utf8))
        #expect(failure("\(parts[0]).\(forgedBody).\(parts[2])") == .verificationFailed)
        let none = Base64URL.encode(Data(#"{"alg":"none"}"#.utf8))
        #expect(failure("\(none).\(parts[1]).") == .unsupportedAlgorithm, "alg none is never accepted")
        let hmac = Base64URL.encode(Data(#"{"alg":"HS256"}"#.utf8))
        #expect(failure("\(hmac).\(parts[1]).\(parts[2])") == .unsupportedAlgorithm)
        #expect(failure("\(parts[0]).\(parts[1])") == .badFormat)
        #expect(failure("\(parts[0]).\(parts[1]).") == .signatureNotBase64)
        #expect(failure("!!.\(parts[1]).\(parts[2])") == .headerNotBase64)
        #expect(failure(String(repeating: "a", count: 20_000)) == .tooLarge)
    }

    @Test func badJWKSAreRefusedWithAReason() {
        #expect(throws: JWKSet.Problem.self) { try JWKSet(json: "not json") }
        #expect(throws: JWKSet.Problem.self) { try JWKSet(json: #"{"keys": []}"#) }
        #expect(throws: JWKSet.Problem.self) { try JWKSet(json: #"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#) }
        #expect(throws: JWKSet.Problem.self) { try JWKSet(json: #"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#) }
        let mixed = try? JWKSet(json: #"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}, "# + TestSigner.jwks([.p256]).dropFirst(9).dropLast(2) + "]}")
        #expect(mixed?.keys.count == 1, "unusable keys are skipped when a usable one remains")
    }
}

@Suite struct RequestAuthenticatorTests {
    static let issuer = JWTVerificationTests.issuer

    func authenticator(locations: [TokenLocation] = [], forward: Bool = false, payloadHeader: String? = nil,
                       claimHeaders: [(header: String, claim: [String])] = [], keys: JWTKeySource? = nil) -> RequestAuthenticator {
        RequestAuthenticator(rules: [JWTRule(
            requirements: JWTRequirements(issuer: Self.issuer, audiences: []), locations: locations,
            keys: keys ?? .inline(JWTVerificationTests.keys), forwardOriginalToken: forward,
            outputPayloadToHeader: payloadHeader, outputClaimToHeaders: claimHeaders, label: "t")])
    }

    var token: String {
        TestSigner.rsa.token(["iss": Self.issuer, "sub": "alice", "exp": Date().timeIntervalSince1970 + 600,
                              "realm": ["role": "admin"], "groups": ["a", "b"]])
    }

    func run(_ authenticator: RequestAuthenticator, _ headers: [(String, String)], query: String? = nil,
             keys: StaticKeys = StaticKeys()) -> AuthenticationResult {
        authenticator.authenticate(headers: Headers(headers), query: query, keys: keys, now: Date())
    }

    @Test func noTokenIsAnonymousAndOtherSchemesAreNotTokens() {
        guard case .anonymous = run(authenticator(), []) else { Issue.record("expected anonymous"); return }
        guard case .anonymous = run(authenticator(), [("authorization", "Basic dXNlcjpwYXNz")]) else {
            Issue.record("a Basic credential is not a bearer token"); return
        }
    }

    @Test func defaultLocationsAreTheBearerHeaderAndAccessTokenParam() {
        guard case .authenticated(let identity, let changes, _) = run(authenticator(), [("authorization", "bearer \(token)")]) else {
            Issue.record("expected a verified token"); return
        }
        #expect(identity.principal == "\(Self.issuer)/alice")
        #expect(changes.remove.contains("authorization"), "the token is stripped unless forwardOriginalToken")
        guard case .authenticated = run(authenticator(), [], query: "a=1&access_token=\(token)") else {
            Issue.record("expected the query token to verify"); return
        }
    }

    @Test func configuredLocationsReplaceTheDefaults() {
        let custom = authenticator(locations: [.header("x-jwt", prefix: "Token "), .cookie("session")])
        guard case .anonymous = run(custom, [("authorization", "Bearer \(token)")]) else {
            Issue.record("Authorization is not looked at when other locations are configured"); return
        }
        guard case .authenticated = run(custom, [("x-jwt", "Token \(token)")]) else { Issue.record("header"); return }
        guard case .authenticated = run(custom, [("cookie", "a=b; session=\(token); c=d")]) else { Issue.record("cookie"); return }
    }

    @Test func invalidTokensFailAndUnloadedKeysFailClosed() {
        guard case .failed(.verificationFailed) = run(authenticator(), [("authorization", "Bearer \(token.dropLast(4))AAAA")]) else {
            Issue.record("a bad signature must fail"); return
        }
        let remote = authenticator(keys: .remote("https://idp.example.com/jwks"))
        guard case .failed(.keysUnavailable) = run(remote, [("authorization", "Bearer \(token)")]) else {
            Issue.record("keys not loaded yet: a token must be refused"); return
        }
        let loaded = StaticKeys(loaded: ["https://idp.example.com/jwks": JWTVerificationTests.keys])
        guard case .authenticated = run(remote, [("authorization", "Bearer \(token)")], keys: loaded) else {
            Issue.record("keys loaded: the token verifies"); return
        }
    }

    @Test func outputsAndForwarding() {
        let outputs = authenticator(forward: true, payloadHeader: "x-jwt-payload",
                                    claimHeaders: [("x-role", ["realm", "role"]), ("x-groups", ["groups"]), ("x-missing", ["nope"])])
        let token = self.token
        guard case .authenticated(_, let changes, _) = run(outputs, [("authorization", "Bearer \(token)")]) else {
            Issue.record("expected a verified token"); return
        }
        #expect(!changes.remove.contains("authorization"))
        #expect(Set(changes.remove) == ["x-jwt-payload", "x-role", "x-groups", "x-missing"],
                "client copies of output headers are always removed")
        let set = Dictionary(changes.set.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(set["x-role"] == "admin" && set["x-groups"] == "a,b" && set["x-missing"] == nil)
        #expect(set["x-jwt-payload"] == String(token.split(separator: ".")[1]))
    }

    @Test func theCacheSkipsOnlyTheSignatureCheck() {
        let remote = authenticator(keys: .remote("https://idp.example.com/jwks"))
        let loaded = StaticKeys(loaded: ["https://idp.example.com/jwks": JWTVerificationTests.keys])
        let cache = VerifiedTokenCache()
        let expiresSoon = TestSigner.rsa.token(["iss": Self.issuer, "sub": "alice", "exp": Date().timeIntervalSince1970 + 120])
        let headers = Headers([("authorization", "Bearer \(expiresSoon)")])
        guard case .authenticated = remote.authenticate(headers: headers, query: nil, keys: loaded, now: Date(), cache: cache, epoch: 1)
        else { Issue.record("first verification"); return }
        #expect(cache.count == 1)
        guard case .authenticated = remote.authenticate(headers: headers, query: nil, keys: StaticKeys(), now: Date(), cache: cache, epoch: 1)
        else { Issue.record("a hit needs no keys"); return }
        guard case .failed(.keysUnavailable) = remote.authenticate(headers: headers, query: nil, keys: StaticKeys(), now: Date(),
                                                                    cache: cache, epoch: 2)
        else { Issue.record("a new epoch verifies again"); return }
        guard case .failed(.expired) = remote.authenticate(headers: headers, query: nil, keys: loaded,
                                                           now: Date().addingTimeInterval(600), cache: cache, epoch: 1)
        else { Issue.record("a cached token still expires"); return }
    }

    @Test func aCachedTokenDoesNotHideAnotherTokenElsewhere() {
        let cache = VerifiedTokenCache()
        let auth = authenticator()
        let token = self.token
        let headers = Headers([("authorization", "Bearer \(token)")])
        guard case .authenticated(_, let first, _) = auth.authenticate(headers: headers, query: nil, keys: StaticKeys(), now: Date(), cache: cache, epoch: 1),
              case .authenticated(_, let second, _) = auth.authenticate(headers: headers, query: nil, keys: StaticKeys(), now: Date(), cache: cache, epoch: 1)
        else { Issue.record("verified, then a cache hit"); return }
        #expect(first.remove == second.remove && second.remove == ["authorization"], "the hit strips the token like the full path")
        let forged = TestSigner.rsa.token(["iss": "https://evil.example.com", "sub": "x"])
        guard case .failed(.unknownIssuer) = auth.authenticate(headers: headers, query: "access_token=\(forged)", keys: StaticKeys(),
                                                                now: Date(), cache: cache, epoch: 1)
        else { Issue.record("a second token in the query is still checked"); return }
        let twice = Headers([("authorization", "Bearer \(token)"), ("authorization", "Bearer \(forged)")])
        guard case .failed = auth.authenticate(headers: twice, query: nil, keys: StaticKeys(), now: Date(), cache: cache, epoch: 1)
        else { Issue.record("a second Authorization value is still checked"); return }
    }

    @Test func twoTokensTheFirstIsTheIdentityAndOnlyItsClaimsAreForwarded() {
        let outputs = authenticator(claimHeaders: [("x-user", ["sub"])])
        let alice = token
        let bob = TestSigner.rsa.token(["iss": Self.issuer, "sub": "bob", "exp": Date().timeIntervalSince1970 + 600])
        guard case .authenticated(let identity, let changes, _) = run(outputs, [("authorization", "Bearer \(alice)")],
                                                                    query: "access_token=\(bob)") else {
            Issue.record("both tokens verify"); return
        }
        #expect(identity.principal == "\(Self.issuer)/alice")
        #expect(changes.set.filter { $0.name == "x-user" }.map(\.value) == ["alice"],
                "the claims written upstream are those of the identity authorization judged")
    }

    @Test func claimValuesAreHandedOnAsTheTokenHasThemForTheEncoderToJudge() {
        // The authenticator does not sanitize: the upstream request builder refuses control bytes (one
        // choke point), and that refusal is tested with the builder.
        let outputs = authenticator(claimHeaders: [("x-name", ["name"])])
        let crlf = TestSigner.rsa.token(["iss": Self.issuer, "sub": "a", "name": "x\r\nx-admin: 1",
                                         "exp": Date().timeIntervalSince1970 + 600])
        guard case .authenticated(_, let changes, _) = run(outputs, [("authorization", "Bearer \(crlf)")]) else {
            Issue.record("the token itself is valid"); return
        }
        #expect(changes.set.first { $0.name == "x-name" }?.value == "x\r\nx-admin: 1")
    }
}

@Suite struct SpaceDelimitedClaimTests {
    @Test func scopeIsSplitAlwaysOtherClaimsOnlyWhenConfigured() {
        let requirements = JWTRequirements(issuer: "i", audiences: [], spaceDelimitedClaims: ["roles"])
        let identity = JWTIdentity(principal: "i/s", claims: ["scope": .string("read admin"), "roles": .string("a b"), "other": .string("x y")],
                                   spaceDelimitedClaims: requirements.spaceDelimitedClaims)
        #expect(identity.containsClaim(["scope"]) { $0 == "admin" })
        #expect(identity.containsClaim(["roles"]) { $0 == "b" })
        #expect(!identity.containsClaim(["other"]) { $0 == "y" })
        #expect(identity.containsClaim(["other"]) { $0 == "x y" })
    }
}
