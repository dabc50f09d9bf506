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

/// What a request is hashed on (`consistentHash.httpHeaderName`, `useSourceIp`, `httpQueryParameterName`).
public enum HashKeySource: Sendable, Equatable {
    /// Lowercased.
    case header(String)
    case sourceIP
    case queryParameter(String)
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

/// The choices that need per-event-loop state, pure: the data plane keeps the state and the random
/// source, and these decide.
public enum EndpointChoice {
    /// Power of two choices (Envoy's LEAST_REQUEST with equal weights): two draws, possibly the same
    /// endpoint; the one with fewer requests in flight wins, the first on a tie.
    public static func leastRequest(active: [Int], draw: (Int) -> Int) -> Int {
        let count = active.count
        guard count > 1 else { return 0 }
        let first = draw(count)
        let second = draw(count)
        return active[second] < active[first] ? second : first
    }
}
