import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a `jwtRules` entry looks for its token.
public enum TokenLocation: Sendable, Hashable {
    /// A header (lowercase) and the prefix before the token, e.g. `authorization` / `Bearer `.
    case header(String, prefix: String)
    case param(String)
    case cookie(String)

    /// Istio's defaults, used only when a rule names no location at all.
    public static let defaults: [TokenLocation] = [.header("authorization", prefix: "Bearer "), .param("access_token")]
}

/// Where a rule's keys come from: inline `jwks`, or `jwksUri` resolved by the data plane's key cache.
public enum JWTKeySource: Sendable {
    case inline(JWKSet)
    case remote(String)

    /// A rule with neither `jwks` nor `jwksUri` finds its keys by OpenID discovery from its issuer; the
    /// key cache knows the source by this prefix and the issuer.
    public static let discoveryPrefix = "openid-discovery:"

    public static func discovery(issuer: String) -> JWTKeySource { .remote(discoveryPrefix + issuer) }
}

/// The data plane's JWKS cache. nil means "not loaded (yet)", and tokens of that issuer are refused.
public protocol JWKSProvider {
    func keys(for uri: String) -> JWKSet?
    /// Changes whenever some key set changes, so verified-token caches drop what older keys vouched for.
    var generation: Int { get }
}

extension JWKSProvider {
    public var generation: Int { 0 }
}

/// One compiled `jwtRules` entry.
public struct JWTRule: Sendable {
    public var requirements: JWTRequirements
    public var locations: [TokenLocation]
    public var keys: JWTKeySource
    public var forwardOriginalToken: Bool
    public var outputPayloadToHeader: String?
    /// (header, claim path); the claim may be nested, `a.b`.
    public var outputClaimToHeaders: [(header: String, claim: [String])]
    /// `ns/name[jwtRules N]`, for `explain`.
    public var label: String
    /// How long a `jwksUri` fetch may take (Istio's `timeout`, default 5 s).
    public var fetchTimeout: Double

    public init(requirements: JWTRequirements, locations: [TokenLocation], keys: JWTKeySource,
                forwardOriginalToken: Bool, outputPayloadToHeader: String?,
                outputClaimToHeaders: [(header: String, claim: [String])], label: String, fetchTimeout: Double = 5) {
        self.fetchTimeout = fetchTimeout
        self.requirements = requirements
        self.locations = locations.isEmpty ? TokenLocation.defaults : locations
        self.keys = keys
        self.forwardOriginalToken = forwardOriginalToken
        self.outputPayloadToHeader = outputPayloadToHeader
        self.outputClaimToHeaders = outputClaimToHeaders
        self.label = label
    }
}

/// The outcome of RequestAuthentication for one request.
public enum AuthenticationResult: Sendable {
    /// No token anywhere a rule looks: the request goes on without an identity (authorization decides).
    case anonymous
    /// Every token found verified. `headers` are the changes for the upstream request.
    case authenticated(JWTIdentity, headers: HeaderChanges, rule: String)
    /// A token was found and refused: 401.
    case failed(JWTFailure)
}

/// Header edits RequestAuthentication asks for: tokens stripped unless forwarded, claims and payloads
/// written. Names are lowercase.
public struct HeaderChanges: Sendable {
    public var remove: [String]
    public var set: [(name: String, value: String)]

    public init(remove: [String] = [], set: [(name: String, value: String)] = []) {
        self.remove = remove
        self.set = set
    }
}

/// The RequestAuthentication rules that apply to one listener, compiled.
public struct RequestAuthenticator: Sendable {
    public let rules: [JWTRule]
    /// Every header a rule writes: removed from the client's request whatever happens, so a client
    /// can never supply a claim header itself.
    public let outputHeaders: [String]
    let locations: [TokenLocation]
    /// The one header tokens may come in, when there is one, for the cache-hit path.
    let cacheable: CacheableHeader?

    struct CacheableHeader: Sendable {
        var name: String
        var prefix: String
        var location: TokenLocation
        /// `outputHeaders` plus the token header: what an accepted token removes (unless forwarded),
        /// built once so accepting a token allocates nothing.
        var removals: [String]
        /// Query parameters and cookies, which must hold no token for a hit.
        var otherLocations: [TokenLocation]
    }

    public static let empty = RequestAuthenticator(rules: [])

    public init(rules: [JWTRule]) {
        self.rules = rules
        var outputs: [String] = []
        var locations: [TokenLocation] = []
        for rule in rules {
            if let header = rule.outputPayloadToHeader { outputs.append(header) }
            outputs += rule.outputClaimToHeaders.map(\.header)
            for location in rule.locations where !locations.contains(location) { locations.append(location) }
        }
        outputHeaders = Array(Set(outputs)).sorted()
        self.locations = locations
        let headerLocations = locations.filter { if case .header = $0 { true } else { false } }
        if headerLocations.count == 1, case .header(let name, let prefix) = headerLocations[0] {
            cacheable = CacheableHeader(
                name: name, prefix: prefix, location: headerLocations[0],
                removals: outputHeaders.contains(name) ? outputHeaders : outputHeaders + [name],
                otherLocations: locations.filter { $0 != headerLocations[0] })
        } else {
            cacheable = nil
        }
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// The `jwksUri`s the data plane must fetch, with the longest timeout any rule gives each.
    public var remoteKeySources: [String: Double] {
        var out: [String: Double] = [:]
        for rule in rules {
            if case .remote(let uri) = rule.keys { out[uri] = max(out[uri] ?? 0, rule.fetchTimeout) }
        }
        return out
    }

    /// `cache` (per event loop) remembers tokens already verified under `epoch` (which changes with the
    /// snapshot, the fetched keys and the minute), as Envoy's jwt_authn cache does: a hit skips only the
    /// signature; `exp` and `nbf` are checked again on every request.
    public func authenticate(headers: any HeaderValues, query: String?, keys: any JWKSProvider, now: Date,
                             cache: VerifiedTokenCache? = nil, epoch: Int = 0) -> AuthenticationResult {
        if let cache, let hit = cachedResult(headers: headers, query: query, cache: cache, epoch: epoch, now: now) {
            return hit
        }
        var found: [(token: Substring, location: TokenLocation)] = []
        for location in locations {
            for token in Self.extract(location, headers: headers, query: query)
            where !found.contains(where: { $0.token == token }) {
                found.append((token, location))
            }
        }
        guard !found.isEmpty else { return .anonymous }
        var identity: JWTIdentity?
        var ruleLabel = ""
        var changes = HeaderChanges(remove: outputHeaders)
        for (token, location) in found {
            let verified: VerifiedTokenCache.Entry
            if let hit = cache?.entry(for: token, location: location, epoch: epoch), hit.isCurrent(at: now, skew: rules[hit.ruleIndex].requirements.clockSkew) {
                verified = hit
            } else {
                switch verify(token, location: location, keys: keys, now: now) {
                case .success(let entry):
                    verified = VerifiedTokenCache.Entry(identity: entry.identity, ruleIndex: entry.ruleIndex,
                                                        location: location, epoch: epoch, encodedPayload: entry.encodedPayload)
                    cache?.store(verified, for: token)
                case .failure(let failure):
                    return .failed(failure)
                }
            }
            let rule = rules[verified.ruleIndex]
            if !rule.forwardOriginalToken, case .header(let name, _) = location, !changes.remove.contains(name) {
                changes.remove.append(name)
            }
            // Every token must verify, but only the first one found is the request's identity: authorization
            // judges it, so its claims (and only its claims) are the ones written for the upstream. A second
            // token cannot swap in the claim headers of another principal.
            if identity == nil {
                identity = verified.identity
                ruleLabel = rule.label
                appendOutputs(of: rule, for: verified, to: &changes)
            }
        }
        return .authenticated(identity!, headers: changes, rule: ruleLabel)
    }

    /// The common request, answered from the cache without allocating: one token, in the one header
    /// location, no token anywhere else, verified before under this epoch and still within exp/nbf.
    /// nil sends the request down the full path, which decides the same way (only slower).
    func cachedResult(headers: any HeaderValues, query: String?, cache: VerifiedTokenCache, epoch: Int,
                      now: Date) -> AuthenticationResult? {
        guard let header = cacheable else { return nil }
        for location in header.otherLocations where !Self.extract(location, headers: headers, query: query).isEmpty {
            return nil
        }
        var values = 0
        var hit: VerifiedTokenCache.Entry?
        _ = headers.containsValue(header.name) { bytes in
            values += 1
            if values == 1, let range = Self.bearerRange(bytes, prefix: header.prefix) {
                hit = cache.entry(for: UnsafeRawBufferPointer(rebasing: bytes[range]), location: header.location, epoch: epoch)
            }
            return false
        }
        guard values == 1, let entry = hit, entry.isCurrent(at: now, skew: rules[entry.ruleIndex].requirements.clockSkew)
        else { return nil }
        let rule = rules[entry.ruleIndex]
        var changes = HeaderChanges(remove: rule.forwardOriginalToken ? outputHeaders : header.removals)
        appendOutputs(of: rule, for: entry, to: &changes)
        return .authenticated(entry.identity, headers: changes, rule: rule.label)
    }

    /// `outputPayloadToHeader` and `outputClaimToHeaders` of the rule that accepted the token.
    func appendOutputs(of rule: JWTRule, for verified: VerifiedTokenCache.Entry, to changes: inout HeaderChanges) {
        if let header = rule.outputPayloadToHeader { changes.set.append((header, verified.encodedPayload)) }
        for output in rule.outputClaimToHeaders {
            let values = verified.identity.claim(output.claim)
            if !values.isEmpty { changes.set.append((output.header, values.joined(separator: ","))) }
        }
    }

    /// The full check of one token: decode, pick the rule by issuer and location, find the keys, verify.
    func verify(_ token: Substring, location: TokenLocation, keys: any JWKSProvider,
                now: Date) -> Result<(identity: JWTIdentity, ruleIndex: Int, encodedPayload: String), JWTFailure> {
        let decoded: DecodedJWT
        do {
            decoded = try DecodedJWT(token)
        } catch {
            return .failure(error)
        }
        guard let index = rules.firstIndex(where: { $0.requirements.issuer == decoded.issuer && $0.locations.contains(location) })
        else { return .failure(.unknownIssuer) }
        let rule = rules[index]
        let keySet: JWKSet
        switch rule.keys {
        case .inline(let inline): keySet = inline
        case .remote(let uri):
            guard let loaded = keys.keys(for: uri) else { return .failure(.keysUnavailable) }
            keySet = loaded
        }
        do {
            let identity = try JWTVerifier.verify(decoded, keys: keySet, requirements: rule.requirements, now: now)
            return .success((identity, index, String(decoded.encodedPayload)))
        } catch {
            return .failure(error)
        }
    }

    /// The tokens at `location`. Works on UTF-8 bytes: a token is ~1 KiB of ASCII, and walking it as
    /// Swift Characters cost more than the rest of the request.
    static func extract(_ location: TokenLocation, headers: any HeaderValues, query: String?) -> [Substring] {
        switch location {
        case .header(let name, let prefix):
            return headers.values(name).compactMap { value in bearer(value, prefix: prefix) }
        case .param(let name):
            guard let query else { return [] }
            return pairs(query[...], separator: UInt8(ascii: "&"), name: name)
        case .cookie(let name):
            return headers.values("cookie").flatMap { pairs($0[...], separator: UInt8(ascii: ";"), name: name) }
        }
    }

    static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// The token after `prefix` (ASCII case-insensitive: an auth scheme is, RFC 9110 §11.1), blanks
    /// trimmed. A value with another scheme (`Basic …`) is not a token, as in Envoy. Anything that is
    /// not base64url in what remains fails decoding later, so the token's bytes are not scanned here.
    static func bearer(_ value: String, prefix: String) -> Substring? {
        var value = value
        let bounds = value.withUTF8 { bearerRange(UnsafeRawBufferPointer($0), prefix: prefix) }
        guard let bounds else { return nil }
        let utf8 = value.utf8
        return value[utf8.index(utf8.startIndex, offsetBy: bounds.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: bounds.upperBound)]
    }

    /// Where the token is in a header value's bytes, after `prefix` and blanks.
    static func bearerRange(_ bytes: UnsafeRawBufferPointer, prefix: String) -> Range<Int>? {
        var prefix = prefix
        return prefix.withUTF8 { expected in
            var start = 0
            while start < bytes.count, isBlank(bytes[start]) { start += 1 }
            guard bytes.count - start > expected.count else { return nil }
            for byte in expected {
                guard lower(bytes[start]) == lower(byte) else { return nil }
                start += 1
            }
            while start < bytes.count, isBlank(bytes[start]) { start += 1 }
            var end = bytes.count
            while end > start, isBlank(bytes[end - 1]) { end -= 1 }
            return start == end ? nil : start..<end
        }
    }

    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    /// Values of `name=value` pairs separated by `separator` (query `&`, cookie `;`), blanks trimmed.
    static func pairs(_ text: Substring, separator: UInt8, name: String) -> [Substring] {
        var out: [Substring] = []
        let utf8 = text.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: separator) ?? utf8.endIndex
            var keyStart = start
            while keyStart < end, isBlank(utf8[keyStart]) { keyStart = utf8.index(after: keyStart) }
            if let equals = utf8[keyStart..<end].firstIndex(of: UInt8(ascii: "=")),
               utf8[keyStart..<equals].elementsEqual(name.utf8) {
                let valueStart = utf8.index(after: equals)
                if valueStart < end { out.append(text[valueStart..<end]) }
            }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
        return out
    }
}

/// Tokens verified recently on one event loop (not shared, so no lock). Bounded: when full it is emptied,
/// which costs a round of signature checks and nothing else.
public final class VerifiedTokenCache {
    public struct Entry {
        /// The whole token: the slot is picked by its tail only.
        var token: String = ""
        var identity: JWTIdentity
        var ruleIndex: Int
        var location: TokenLocation
        var epoch: Int
        var encodedPayload: String
        /// Read from the claims once, checked on every hit.
        var lifetime: TokenLifetime?

        init(identity: JWTIdentity, ruleIndex: Int, location: TokenLocation, epoch: Int, encodedPayload: String) {
            self.identity = identity
            self.ruleIndex = ruleIndex
            self.location = location
            self.epoch = epoch
            self.encodedPayload = encodedPayload
            lifetime = try? TokenLifetime(identity.claims)
        }

        /// `exp` and `nbf` still hold (the signature, issuer and audience cannot have changed).
        func isCurrent(at now: Date, skew: Double) -> Bool {
            guard let lifetime else { return false }
            return (try? lifetime.check(now: now, skew: skew)) != nil
        }
    }

    /// Direct-mapped: a token's slot comes from its last 8 bytes (signature bytes, as good as random)
    /// and its length, so a lookup hashes nothing; the slot holds the whole token, compared on a hit,
    /// and a token that lands on a taken slot replaces the one there.
    private var slots: [Entry?]
    private let mask: Int
    public private(set) var count = 0

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int = 1024) {
        var size = 1
        while size < capacity { size <<= 1 }
        slots = Array(repeating: nil, count: size)
        mask = size - 1
    }

    static func key(_ token: UnsafeRawBufferPointer) -> UInt64 {
        var tail: UInt64 = 0
        for byte in token.suffix(8) { tail = tail << 8 | UInt64(byte) }
        return tail ^ UInt64(token.count) &* 0x9E37_79B9_7F4A_7C15
    }

    private func slot(_ token: UnsafeRawBufferPointer) -> Int {
        let key = Self.key(token)
        return Int(truncatingIfNeeded: key ^ key >> 29) & mask
    }

    func entry(for token: UnsafeRawBufferPointer, location: TokenLocation, epoch: Int) -> Entry? {
        guard let entry = slots[slot(token)], entry.epoch == epoch, entry.location == location else { return nil }
        var stored = entry.token
        let same = stored.withUTF8 { $0.count == token.count && memcmp($0.baseAddress!, token.baseAddress!, token.count) == 0 }
        return same ? entry : nil
    }

    func entry(for token: Substring, location: TokenLocation, epoch: Int) -> Entry? {
        let found = token.utf8.withContiguousStorageIfAvailable {
            entry(for: UnsafeRawBufferPointer($0), location: location, epoch: epoch)
        }
        if let found { return found }
        return Array(token.utf8).withUnsafeBytes { entry(for: $0, location: location, epoch: epoch) }
    }

    func store(_ entry: Entry, for token: Substring) {
        var entry = entry
        // Copied out of the request's header storage so the cache does not keep it alive.
        entry.token = String(token)
        let index = entry.token.withUTF8 { slot(UnsafeRawBufferPointer($0)) }
        if slots[index] == nil { count += 1 }
        slots[index] = entry
    }
}
