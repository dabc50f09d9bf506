/// Round-robin position per cluster. One per event loop: loops advance independently, which spreads
/// load just as evenly without sharing a counter across threads.
struct RoundRobin {
    private var positions: [String: Int] = [:]

    mutating func next(_ cluster: String, count: Int) -> Int {
        guard count > 0 else { return 0 }
        let position = positions[cluster, default: Int.random(in: 0..<count)]
        positions[cluster] = (position + 1) % count
        return position % count
    }
}
