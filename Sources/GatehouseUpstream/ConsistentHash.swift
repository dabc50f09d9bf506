/// An endpoint as a consistent-hash table sees it: a name that is the same in every replica of the
/// gateway (its `address:port`) and a weight.
public struct HashedEndpoint: Sendable, Equatable {
    public var name: String
    public var weight: Int

    public init(name: String, weight: Int = 1) {
        self.name = name
        self.weight = max(weight, 1)
    }
}

/// Istio's `consistentHash.ringHash` (Envoy's ring hash): each endpoint puts points on a ring of 2⁶⁴ in
/// proportion to its weight, at least `minimumRingSize` points in all; a request's hash goes to the
/// first point at or after it. When an endpoint leaves, only the requests that hashed to its points
/// and to the points the others add in its place move: the rest keep their endpoint.
public struct RingHashTable: Sendable {
    /// Sorted by hash.
    private let hashes: [UInt64]
    private let owners: [Int32]

    public init(endpoints: [HashedEndpoint], minimumRingSize: Int = 1024) {
        let totalWeight = endpoints.reduce(0) { $0 + $1.weight }
        var points: [(hash: UInt64, owner: Int32)] = []
        if totalWeight > 0 {
            let ringSize = max(minimumRingSize, endpoints.count)
            for (index, endpoint) in endpoints.enumerated() {
                // Rounded up, so every endpoint has a point and the ring is at least the size asked for.
                let count = (ringSize * endpoint.weight + totalWeight - 1) / totalWeight
                for replica in 0..<count {
                    points.append((XXHash64.hash("\(endpoint.name)_\(replica)"), Int32(index)))
                }
            }
        }
        // Ties (vanishingly rare) go to the lower endpoint index, so every replica builds the same ring.
        points.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.owner < $1.owner }
        hashes = points.map(\.hash)
        owners = points.map(\.owner)
    }

    public var isEmpty: Bool { hashes.isEmpty }

    /// The endpoint index for a request whose key hashes to `hash`; nil for an empty table.
    public func endpoint(for hash: UInt64) -> Int? {
        guard !hashes.isEmpty else { return nil }
        var low = 0
        var high = hashes.count
        while low < high {
            let middle = (low + high) / 2
            if hashes[middle] < hash { low = middle + 1 } else { high = middle }
        }
        return Int(owners[low == hashes.count ? 0 : low])
    }
}

/// Istio's `consistentHash.maglev` (Google's Maglev, as Envoy builds it): a lookup table of `tableSize`
/// slots (a prime; Istio's default 65537) that the endpoints fill in turn, each along its own permutation
/// of the slots, so each gets a share in proportion to its weight and an endpoint leaving disturbs few
/// slots besides its own.
public struct MaglevTable: Sendable {
    private let slots: [Int32]

    public init(endpoints: [HashedEndpoint], tableSize: Int = 65537) {
        guard !endpoints.isEmpty, tableSize > 1 else {
            slots = []
            return
        }
        let size = UInt64(tableSize)
        let offsets = endpoints.map { XXHash64.hash($0.name, seed: 0) % size }
        let skips = endpoints.map { XXHash64.hash($0.name, seed: 1) % (size - 1) + 1 }
        let heaviest = endpoints.map(\.weight).max() ?? 1
        var next = [UInt64](repeating: 0, count: endpoints.count)
        var placed = [Int](repeating: 0, count: endpoints.count)
        var table = [Int32](repeating: -1, count: tableSize)
        var filled = 0
        var round = 0
        while filled < tableSize {
            round += 1
            for index in endpoints.indices where filled < tableSize {
                // By round r an endpoint has placed r × weight / heaviest entries: weights become shares.
                guard placed[index] < round * endpoints[index].weight / heaviest else { continue }
                var slot = (offsets[index] + next[index] * skips[index]) % size
                while table[Int(slot)] >= 0 {
                    next[index] += 1
                    slot = (offsets[index] + next[index] * skips[index]) % size
                }
                table[Int(slot)] = Int32(index)
                next[index] += 1
                placed[index] += 1
                filled += 1
            }
        }
        slots = table
    }

    public var isEmpty: Bool { slots.isEmpty }

    public func endpoint(for hash: UInt64) -> Int? {
        slots.isEmpty ? nil : Int(slots[Int(hash % UInt64(slots.count))])
    }
}
