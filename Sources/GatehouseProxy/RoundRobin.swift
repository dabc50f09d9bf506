/// Round-robin positions. Each event loop keeps its own (in `ClusterLoopTable`): loops advance
/// independently, which spreads load just as evenly without sharing a counter across threads.
enum RoundRobin {
    /// The index to use from `count` choices, advancing `position`; a first use starts at `start` (a
    /// random draw, so loops and restarts do not all begin on the first endpoint).
    static func next(_ position: inout Int?, count: Int, start: @autoclosure () -> Int) -> Int {
        guard count > 0 else { return 0 }
        let current = (position ?? start()) % count
        position = (current + 1) % count
        return current
    }
}

/// One event loop's per-cluster state for the live snapshot, found by `Cluster.index` (an array index,
/// not a hash of the cluster's name): the round-robin positions over endpoints and over the addresses a
/// name resolved to, the requests in flight per endpoint (LEAST_REQUEST), and each endpoint's cached
/// upstream target. A new snapshot version starts it afresh,
/// since an index then names another cluster. Pure: the shell builds targets, this only keeps them.
struct ClusterLoopTable<Target> {
    struct Entry {
        var position: Int?
        /// Requests in flight per endpoint, for LEAST_REQUEST (and `/clusters`).
        var active: [Int]
        /// Requests waiting for a new upstream connection.
        var pending = 0
        /// Per endpoint: the position among the addresses its name resolved to.
        var resolvedPositions: [Int?]
        var targets: [Target?]
    }

    private(set) var version = -1
    private var entries: [Entry?] = []

    /// Makes `cluster` (with `endpoints` endpoints) ready for `version`, clearing every entry when the
    /// version changed.
    mutating func prepare(version: Int, cluster: Int, endpoints: Int) {
        if version != self.version {
            entries.removeAll(keepingCapacity: true)
            self.version = version
        }
        if entries.count <= cluster { entries.append(contentsOf: repeatElement(nil, count: cluster + 1 - entries.count)) }
        if entries[cluster] == nil {
            entries[cluster] = Entry(position: nil, active: Array(repeating: 0, count: endpoints),
                                     resolvedPositions: Array(repeating: nil, count: endpoints),
                                     targets: Array(repeating: nil, count: endpoints))
        }
    }

    /// The next endpoint index of a prepared cluster.
    mutating func nextEndpoint(cluster: Int, count: Int, start: @autoclosure () -> Int) -> Int {
        RoundRobin.next(&entries[cluster]!.position, count: count, start: start())
    }

    /// Requests in flight per endpoint of a prepared cluster.
    func active(cluster: Int) -> [Int] { entries[cluster]!.active }

    /// A request to `endpoint` of a prepared cluster began.
    mutating func began(cluster: Int, endpoint: Int) {
        entries[cluster]!.active[endpoint] += 1
    }

    /// A request that began under `version` ended; one from an earlier version is not counted (its
    /// table was cleared).
    mutating func ended(version: Int, cluster: Int, endpoint: Int) {
        guard version == self.version, cluster < entries.count, entries[cluster] != nil,
              entries[cluster]!.active[endpoint] > 0 else { return }
        entries[cluster]!.active[endpoint] -= 1
    }

    /// A request of a prepared cluster began waiting for a new connection.
    mutating func pendingBegan(cluster: Int) {
        entries[cluster]!.pending += 1
    }

    /// A wait that began under `version` ended.
    mutating func pendingEnded(version: Int, cluster: Int) {
        guard version == self.version, cluster < entries.count, entries[cluster] != nil,
              entries[cluster]!.pending > 0 else { return }
        entries[cluster]!.pending -= 1
    }

    /// Requests in flight per endpoint and waiting for a connection, of each cluster used under
    /// `version` (none when the table holds another version).
    func load(version: Int) -> ClusterLoad {
        var load = ClusterLoad()
        guard version == self.version else { return load }
        for (index, entry) in entries.enumerated() {
            guard let entry else { continue }
            load.active[index] = entry.active
            load.pending[index] = entry.pending
        }
        return load
    }

    /// The next of `count` resolved addresses of endpoint `endpoint` of a prepared cluster.
    mutating func nextResolved(cluster: Int, endpoint: Int, count: Int, start: @autoclosure () -> Int) -> Int {
        RoundRobin.next(&entries[cluster]!.resolvedPositions[endpoint], count: count, start: start())
    }

    /// The cached target of an endpoint, or the one `make` builds (kept unless nil).
    mutating func target(cluster: Int, endpoint: Int, make: () -> Target?) -> Target? {
        if let cached = entries[cluster]!.targets[endpoint] { return cached }
        let made = make()
        entries[cluster]!.targets[endpoint] = made
        return made
    }
}

/// Requests in flight (per endpoint) and waiting for a new connection, per cluster index: one loop's,
/// or every loop's added up (`/clusters`, `envoy_cluster_upstream_rq_active`).
struct ClusterLoad: Sendable {
    var active: [Int: [Int]] = [:]
    var pending: [Int: Int] = [:]

    mutating func add(_ other: ClusterLoad) {
        for (cluster, counts) in other.active {
            let mine = active[cluster] ?? []
            active[cluster] = (0..<max(mine.count, counts.count)).map {
                ($0 < mine.count ? mine[$0] : 0) + ($0 < counts.count ? counts[$0] : 0)
            }
        }
        for (cluster, count) in other.pending { pending[cluster, default: 0] += count }
    }
}
