import Foundation
import GatehouseSecurity

/// JWT decoding and verification, and JWKS parsing. Input: a mode byte (even: a token checked against a
/// fixed EC key; odd: a JWKS document), then the text.
enum JWTTarget {
    /// Built per input: held in a static, LeakSanitizer takes the keys for a leak at exit (Swift keeps an
    /// enum's case in the spare bits of the class reference, which it does not recognize as a pointer).
    static var keys: JWKSet { try! JWKSet(json: """
    {"keys": [{"kty": "EC", "crv": "P-256", "x": "H8rgbDUrrpegPgMcpWMqCfafVIYpTb4rb01tFhM5iuQ",
               "y": "Ql_9XNp3YyROZbI-41GBhawQZn0iWKs0rSbf8v-Im4k", "kid": "fuzz"}]}
    """) }

    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        guard let mode = data.first else { return nil }
        let text = String(decoding: data.dropFirst(), as: UTF8.self)
        if mode & 1 == 1 {
            _ = try? JWKSet(json: text)
            return nil
        }
        guard let token = try? DecodedJWT(text[...]) else { return nil }
        let requirements = JWTRequirements(issuer: token.issuer ?? "", audiences: ["api"])
        if let identity = try? JWTVerifier.verify(token, keys: keys, requirements: requirements, now: Date()) {
            return "a token verified against a key nobody holds the private half of: \(identity.principal)"
        }
        return nil
    }
}
