import GatehouseSnapshot
import Synchronization

/// Per-cluster state shared by every event loop (outlier detectors, circuit-breaker counts), by cluster
/// index for the live snapshot version. A new version gets its own table; a cluster whose name and
/// `fingerprint` (what the state depends on: endpoints, policy) are unchanged keeps its state, so a
/// reload neither forgives an ejected endpoint nor forgets the requests in flight.
final class ClusterStateRegistry<State: AnyObject & Sendable>: Sendable {
    private struct Table {
        var version = -1
        var states: [State?] = []
        /// This version's states by cluster name with their fingerprints, and the previous version's (so
        /// that a reload keeps what it can, and memory holds two versions at most).
        var byName: [String: (fingerprint: AnyHashable, state: State)] = [:]
        var previous: [String: (fingerprint: AnyHashable, state: State)] = [:]
    }

    private let table = Mutex(Table())

    /// The state of `cluster` (of snapshot `version`), made by `make` the first time its fingerprint is
    /// seen. A request still on an older snapshot gets the state its cluster's name has now only if that
    /// state was made for the same endpoints and policy (else nil: its endpoint indices would not match).
    func state(for cluster: Cluster, version: Int, fingerprint: () -> AnyHashable, make: () -> State) -> State? {
        table.withLock { table in
            if version > table.version {
                table.version = version
                table.states.removeAll(keepingCapacity: true)
                table.previous = table.byName
                table.byName = [:]
            } else if version < table.version {
                guard let kept = table.byName[cluster.name] ?? table.previous[cluster.name],
                      kept.fingerprint == fingerprint() else { return nil }
                return kept.state
            }
            if cluster.index < table.states.count, let state = table.states[cluster.index] { return state }
            // First use in this version: computed once per cluster and version, not per request.
            let print = fingerprint()
            let state: State
            if let kept = table.byName[cluster.name] ?? table.previous[cluster.name], kept.fingerprint == print {
                state = kept.state
            } else {
                state = make()
            }
            table.byName[cluster.name] = (print, state)
            if table.states.count <= cluster.index {
                table.states.append(contentsOf: repeatElement(nil, count: cluster.index + 1 - table.states.count))
            }
            table.states[cluster.index] = state
            return state
        }
    }

    /// The live state of the cluster named `cluster`, for the admin views: this version's, or the previous
    /// version's until a request asks for it, if made for the same `fingerprint`.
    func current(named name: String, fingerprint: () -> AnyHashable) -> State? {
        table.withLock { table in
            guard let kept = table.byName[name] ?? table.previous[name], kept.fingerprint == fingerprint() else { return nil }
            return kept.state
        }
    }
}
