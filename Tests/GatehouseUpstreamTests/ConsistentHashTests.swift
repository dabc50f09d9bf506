import GatehouseUpstream
import Testing

@Suite struct XXHash64Tests {
    /// The reference implementation's values (python-xxhash gives the same).
    @Test(arguments: [
        ("", UInt64(0), UInt64(0xEF46_DB37_51D8_E999)),
        ("a", 0, 0xD24E_C4F1_A98C_6E5B),
        ("abc", 0, 0x44BC_2CF5_AD77_0999),
        ("Nobody inspects the spammish repetition", 0, 0xFBCE_A83C_8A37_8BF1),
        ("Nobody inspects the spammish repetition", 1, 0x43F4_2544_8D95_4DB6),
        ("10.0.0.1:8080_7", 0, 0x9470_FE2E_758E_2FE1),
        ("10.0.0.1:8080_7", 1, 0x9DCE_CE68_C4FD_2FC7),
    ])
    func referenceValues(text: String, seed: UInt64, expected: UInt64) {
        #expect(XXHash64.hash(text, seed: seed) == expected)
    }
}

/// 20,000 request keys, hashed as the data plane will hash a header value or cookie.
private let keys = (0..<20_000).map { XXHash64.hash("user-\($0)") }

private func endpoints(_ count: Int, weights: [Int]? = nil) -> [HashedEndpoint] {
    (0..<count).map { HashedEndpoint(name: "10.0.0.\($0 + 1):8080", weight: weights?[$0] ?? 1) }
}

/// Each endpoint's share of `keys`.
private func shares(_ pick: (UInt64) -> Int?, endpoints: Int) -> [Double] {
    var counts = [Int](repeating: 0, count: endpoints)
    for key in keys { counts[pick(key)!] += 1 }
    return counts.map { Double($0) / Double(keys.count) }
}

/// The share of keys that stay on their endpoint when endpoint `removed` of `count` leaves, among those
/// that were not on it; and whether every key of the removed endpoint found a remaining one.
private func stability(count: Int, removed: Int, build: ([HashedEndpoint]) -> (UInt64) -> Int?) -> Double {
    let all = endpoints(count)
    var fewer = all
    fewer.remove(at: removed)
    let before = build(all)
    let after = build(fewer)
    var kept = 0
    var survivors = 0
    for key in keys {
        let old = before(key)!
        let new = after(key)!
        let renamed = new >= removed ? new + 1 : new  // back to the index in `all`
        guard old != removed else { continue }
        survivors += 1
        if renamed == old { kept += 1 }
    }
    return Double(kept) / Double(survivors)
}

@Suite struct RingHashTests {
    @Test func equalWeightsShareEvenly() {
        let ring = RingHashTable(endpoints: endpoints(4))
        for share in shares(ring.endpoint(for:), endpoints: 4) { #expect(abs(share - 0.25) < 0.05, "\(share)") }
    }

    @Test func weightsSetTheShares() {
        let ring = RingHashTable(endpoints: endpoints(2, weights: [1, 3]))
        let split = shares(ring.endpoint(for:), endpoints: 2)
        #expect(abs(split[1] - 0.75) < 0.05, "\(split)")
    }

    @Test func mostKeysStayWhenAnEndpointLeaves() {
        // A modulo hash would keep about a third of them here (4 → 3 endpoints).
        let kept = stability(count: 4, removed: 2) { RingHashTable(endpoints: $0).endpoint(for:) }
        #expect(kept > 0.8, "\(kept)")
    }

    @Test func everyReplicaBuildsTheSameRing() {
        let one = RingHashTable(endpoints: endpoints(5))
        let other = RingHashTable(endpoints: endpoints(5))
        #expect(keys.prefix(1000).allSatisfy { one.endpoint(for: $0) == other.endpoint(for: $0) })
        #expect(RingHashTable(endpoints: []).endpoint(for: 42) == nil)
    }
}

@Suite struct MaglevTests {
    @Test func equalWeightsShareEvenly() {
        let table = MaglevTable(endpoints: endpoints(4))
        for share in shares(table.endpoint(for:), endpoints: 4) { #expect(abs(share - 0.25) < 0.02, "\(share)") }
    }

    @Test func weightsSetTheShares() {
        let table = MaglevTable(endpoints: endpoints(2, weights: [1, 3]))
        let split = shares(table.endpoint(for:), endpoints: 2)
        #expect(abs(split[1] - 0.75) < 0.02, "\(split)")
    }

    @Test func mostKeysStayWhenAnEndpointLeaves() {
        let kept = stability(count: 4, removed: 2) { MaglevTable(endpoints: $0).endpoint(for:) }
        #expect(kept > 0.98, "\(kept)")
    }

    @Test func aSmallTableStillFillsEverySlot() {
        let table = MaglevTable(endpoints: endpoints(3), tableSize: 7)
        let owners = (0..<7).map { table.endpoint(for: UInt64($0)) }
        #expect(owners.allSatisfy { $0.map { (0..<3).contains($0) } ?? false }, "\(owners)")
        #expect(Set(owners).count == 3, "every endpoint has a slot")
        #expect(MaglevTable(endpoints: []).endpoint(for: 1) == nil)
    }
}

@Suite struct EndpointChoiceTests {
    /// `choose` with a scripted random source and no skipping unless given.
    func choose(_ balancing: LoadBalancing, count: Int = 4, hash: UInt64? = nil, active: [Int] = [0, 0, 0, 0],
                draws: [UInt64] = [], skip: @escaping (Int) -> Bool = { _ in false }) -> Int {
        var scripted = draws.makeIterator()
        var turn = 0
        return EndpointChoice.choose(balancing, count: count, hash: hash, active: { active },
                                     nextInTurn: { defer { turn += 1 }; return turn % count },
                                     random: { scripted.next() ?? 0 }, skip: skip)
    }

    @Test func ofTwoDrawsTheLessBusyWins() {
        #expect(choose(.leastRequest, active: [0, 2, 9, 5], draws: [3, 1]) == 1)
        #expect(choose(.leastRequest, active: [4, 1, 4, 0], draws: [2, 0]) == 2, "a tie goes to the first draw")
    }

    @Test func aBusyEndpointGetsLessTraffic() {
        // One endpoint always has 10 requests in flight, the others none: it only wins when drawn twice.
        var generator = SystemRandomNumberGenerator()
        var counts = [0, 0, 0, 0]
        for _ in 0..<8_000 {
            counts[EndpointChoice.choose(.leastRequest, count: 4, hash: nil, active: { [10, 0, 0, 0] }, nextInTurn: { 0 },
                                         random: { generator.next() }, skip: { _ in false })] += 1
        }
        let busyShare = Double(counts[0]) / 8_000
        #expect(abs(busyShare - 1.0 / 16) < 0.02, "\(counts)")
    }

    @Test func ejectedEndpointsArePassedOverByEveryPolicy() {
        let ring = LoadBalancing.consistentHash(.sourceIP, .ring(RingHashTable(endpoints: endpoints(4))))
        for balancing in [LoadBalancing.roundRobin, .random, .leastRequest, ring] {
            var generator = SystemRandomNumberGenerator()
            var turn = 0
            for _ in 0..<200 {
                let chosen = EndpointChoice.choose(balancing, count: 4, hash: generator.next(), active: { [0, 0, 0, 0] },
                                                   nextInTurn: { defer { turn += 1 }; return turn % 4 },
                                                   random: { generator.next() }, skip: { $0 != 2 })
                #expect(chosen == 2, "\(balancing.envoyName)")
            }
        }
    }

    @Test func anEjectionMovesOnlyTheEjectedEndpointsKeys() {
        let table = LoadBalancing.consistentHash(.header("x-user"), .maglev(MaglevTable(endpoints: endpoints(4))))
        for key in keys.prefix(2_000) {
            let before = choose(table, hash: key)
            let after = choose(table, hash: key, skip: { $0 == 1 })
            if before == 1 { #expect(after != 1) } else { #expect(after == before) }
        }
    }

    @Test func roundRobinSkipsAnEjectedEndpointInItsTurn() {
        var turn = 0
        let order = (0..<6).map { _ in
            EndpointChoice.choose(.roundRobin, count: 3, hash: nil, active: { [] }, nextInTurn: { defer { turn += 1 }; return turn % 3 },
                                  random: { 0 }, skip: { $0 == 1 })
        }
        #expect(order == [0, 2, 0, 2, 0, 2])
    }
}
