/// How a cluster chooses among its endpoints: a DestinationRule's `loadBalancer`, compiled.
public enum LoadBalancing: Sendable {
    case roundRobin
    /// Istio's default: of two endpoints drawn at random, the one with fewer requests in flight.
    case leastRequest
    case random
    /// The request's hash key (`HashKeySource`) picks the endpoint through a table built once per
    /// configuration, so the same key reaches the same endpoint from every event loop and every replica.
    case consistentHash(HashKeySource, ConsistentHashTable)

    public var envoyName: String {
        switch self {
        case .roundRobin: "ROUND_ROBIN"
        case .leastRequest: "LEAST_REQUEST"
        case .random: "RANDOM"
        case .consistentHash(_, .ring): "RING_HASH"
        case .consistentHash(_, .maglev): "MAGLEV"
        }
    }
}

/// What a request is hashed on (`consistentHash.httpHeaderName`, `httpCookie`, `useSourceIp`,
/// `httpQueryParameterName`).
public enum HashKeySource: Sendable, Equatable {
    /// Lowercased.
    case header(String)
    case cookie(HashCookie)
    case sourceIP
    case queryParameter(String)
}

/// `consistentHash.httpCookie`: the cookie a request is hashed on, and how the gateway sets it on the
/// response when the request has none (Envoy's generated cookie affinity).
public struct HashCookie: Sendable, Equatable {
    public var name: String
    /// What follows `name="value"` in the Set-Cookie field, as Envoy writes it: `; Max-Age=N` (none
    /// for a session cookie), `; Path=…`, the attributes, `; HttpOnly`.
    public var setCookieAttributes: String

    public init(name: String, path: String?, ttlSeconds: Int64, attributes: [(name: String, value: String)]) {
        self.name = name
        var text = ""
        if ttlSeconds != 0 { text += "; Max-Age=\(ttlSeconds)" }
        if let path, !path.isEmpty { text += "; Path=\(path)" }
        for attribute in attributes {
            text += attribute.value.isEmpty ? "; \(attribute.name)" : "; \(attribute.name)=\(attribute.value)"
        }
        setCookieAttributes = text + "; HttpOnly"
    }

    /// The Set-Cookie field value for a generated cookie.
    public func setCookie(value: String) -> String { "\(name)=\"\(value)\"\(setCookieAttributes)" }
}

public enum ConsistentHashTable: Sendable {
    case ring(RingHashTable)
    case maglev(MaglevTable)

    public func endpoint(for hash: UInt64) -> Int? {
        switch self {
        case .ring(let table): table.endpoint(for: hash)
        case .maglev(let table): table.endpoint(for: hash)
        }
    }
}

/// A cluster's choice of endpoint, pure: the data plane keeps the per-event-loop state (round-robin
/// position, requests in flight, the random source) and passes it in.
public enum EndpointChoice {
    /// The endpoint of `count` (at least one) for a request, passing over those `skip` names (ejected
    /// ones; at least one endpoint is not skipped). `hash` is the request's consistent-hash key;
    /// `active` the requests in flight per endpoint; `nextInTurn` advances the round-robin position.
    public static func choose(_ balancing: LoadBalancing, count: Int, hash: UInt64?, active: () -> [Int],
                              nextInTurn: () -> Int, random: () -> UInt64, skip: (Int) -> Bool) -> Int {
        guard count > 1 else { return 0 }
        func draw() -> Int? {
            for _ in 0..<4 {
                let index = Int(random() % UInt64(count))
                if !skip(index) { return index }
            }
            return nil
        }
        switch balancing {
        case .roundRobin:
            for _ in 0..<count {
                let index = nextInTurn()
                if !skip(index) { return index }
            }
        case .random:
            if let index = draw() { return index }
        case .leastRequest:
            // Power of two choices (Envoy's LEAST_REQUEST with equal weights): two draws, possibly the
            // same endpoint; the one with fewer requests in flight wins, the first on a tie.
            if let first = draw(), let second = draw() {
                let inFlight = active()
                return inFlight[second] < inFlight[first] ? second : first
            }
        case .consistentHash(_, let table):
            // An ejected endpoint's keys move on by a rehash; every other key stays where it was.
            var key = hash ?? random()
            for _ in 0..<8 {
                if let index = table.endpoint(for: key), !skip(index) { return index }
                key = key &* 0x9E37_79B9_7F4A_7C15 &+ 1
            }
        }
        // Every draw landed on a skipped endpoint: the next one that is not, from a random place.
        let start = Int(random() % UInt64(count))
        return (0..<count).lazy.map { (start + $0) % count }.first { !skip($0) } ?? start
    }
}
