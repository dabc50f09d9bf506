import Crypto
import _CryptoExtras
import Foundation

/// JWS algorithms Gatehouse verifies. `none` and the HMAC family are refused: a gateway has no shared
/// secret, and accepting `none` is the classic JWT bypass.
public enum JWSAlgorithm: String, Sendable, CaseIterable {
    case RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA
}

/// One public key of a JWKS (RFC 7517), ready to verify.
public struct JWK: Sendable {
    public enum Key: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    public var kid: String?
    /// The key's own `alg`, when it pins one.
    public var algorithm: JWSAlgorithm?
    public var key: Key

    /// Whether this key can check a signature made with `algorithm`.
    public func accepts(_ algorithm: JWSAlgorithm) -> Bool {
        if let pinned = self.algorithm, pinned != algorithm { return false }
        switch (key, algorithm) {
        case (.rsa, .RS256), (.rsa, .RS384), (.rsa, .RS512), (.rsa, .PS256), (.rsa, .PS384), (.rsa, .PS512): return true
        case (.p256, .ES256), (.p384, .ES384), (.ed25519, .EdDSA): return true
        default: return false
        }
    }

    public func isValidSignature(_ signature: Data, over message: Data, algorithm: JWSAlgorithm) -> Bool {
        switch (key, algorithm) {
        case (.rsa(let key), _):
            let signature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .RS256: return key.isValidSignature(signature, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
            case .RS384: return key.isValidSignature(signature, for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5)
            case .RS512: return key.isValidSignature(signature, for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5)
            case .PS256: return key.isValidSignature(signature, for: SHA256.hash(data: message), padding: .PSS)
            case .PS384: return key.isValidSignature(signature, for: SHA384.hash(data: message), padding: .PSS)
            case .PS512: return key.isValidSignature(signature, for: SHA512.hash(data: message), padding: .PSS)
            default: return false
            }
        case (.p256(let key), .ES256):
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: message))
        case (.p384(let key), .ES384):
            guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(signature, for: SHA384.hash(data: message))
        case (.ed25519(let key), .EdDSA):
            return key.isValidSignature(signature, for: message)
        default:
            return false
        }
    }
}

/// A parsed JWKS. Keys of kinds Gatehouse cannot use (symmetric `oct`, unknown curves) are skipped, as
/// Envoy skips them; a set with no usable key at all is an error.
public struct JWKSet: Sendable {
    public var keys: [JWK]

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public init(keys: [JWK]) { self.keys = keys }

    public init(json text: String) throws(Problem) {
        try self.init(data: Data(text.utf8))
    }

    public init(data: Data) throws(Problem) {
        guard let document = JSONValue.parse(data)?.objectValue else {
            throw Problem(description: "not a JSON object")
        }
        // A bare JWK is accepted too, as Envoy does.
        let entries: [JSONValue]
        if case .array(let list)? = document["keys"] {
            entries = list
        } else if document["kty"] != nil {
            entries = [.object(document)]
        } else {
            throw Problem(description: "expected a JWKS ({\"keys\": [...]})")
        }
        var keys: [JWK] = []
        var skipped: [String] = []
        for (index, entry) in entries.enumerated() {
            do {
                keys.append(try Self.key(entry.objectValue ?? [:]))
            } catch {
                skipped.append("keys[\(index)]: \(error.description)")
            }
        }
        guard !keys.isEmpty else {
            throw Problem(description: "no usable key" + (skipped.isEmpty ? "" : " (" + skipped.joined(separator: "; ") + ")"))
        }
        self.keys = keys
    }

    static func key(_ fields: [String: JSONValue]) throws(Problem) -> JWK {
        func bytes(_ name: String) throws(Problem) -> Data {
            guard let text = fields[name]?.stringValue, let data = Base64URL.decode(text[...]), !data.isEmpty else {
                throw Problem(description: "missing or invalid \"\(name)\"")
            }
            return data
        }
        if let use = fields["use"]?.stringValue, use != "sig" { throw Problem(description: "use \"\(use)\" is not sig") }
        var algorithm: JWSAlgorithm?
        if let alg = fields["alg"]?.stringValue {
            guard let known = JWSAlgorithm(rawValue: alg) else { throw Problem(description: "unsupported alg \"\(alg)\"") }
            algorithm = known
        }
        let kid = fields["kid"]?.stringValue
        switch fields["kty"]?.stringValue {
        case "RSA":
            do {
                return JWK(kid: kid, algorithm: algorithm, key: .rsa(try _RSA.Signing.PublicKey(n: try bytes("n"), e: try bytes("e"))))
            } catch let problem as Problem {
                throw problem
            } catch {
                throw Problem(description: "invalid RSA key (2048 bits or more are required)")
            }
        case "EC":
            let x = try bytes("x")
            let y = try bytes("y")
            do {
                switch fields["crv"]?.stringValue {
                case "P-256": return JWK(kid: kid, algorithm: algorithm, key: .p256(try P256.Signing.PublicKey(rawRepresentation: x + y)))
                case "P-384": return JWK(kid: kid, algorithm: algorithm, key: .p384(try P384.Signing.PublicKey(rawRepresentation: x + y)))
                default: throw Problem(description: "unsupported EC curve \"\(fields["crv"]?.stringValue ?? "")\"")
                }
            } catch let problem as Problem {
                throw problem
            } catch {
                throw Problem(description: "invalid EC point")
            }
        case "OKP":
            guard fields["crv"]?.stringValue == "Ed25519" else {
                throw Problem(description: "unsupported OKP curve \"\(fields["crv"]?.stringValue ?? "")\"")
            }
            do {
                return JWK(kid: kid, algorithm: algorithm, key: .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: try bytes("x"))))
            } catch let problem as Problem {
                throw problem
            } catch {
                throw Problem(description: "invalid Ed25519 key")
            }
        case let kty?:
            throw Problem(description: "unsupported kty \"\(kty)\"")
        case nil:
            throw Problem(description: "missing \"kty\"")
        }
    }
}
