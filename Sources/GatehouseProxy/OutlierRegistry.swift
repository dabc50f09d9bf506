import GatehouseSnapshot
import GatehouseUpstream
import NIOCore
import Synchronization

/// One cluster's `OutlierDetector`, shared by every event loop: Envoy keeps one detector per cluster,
/// not per worker, so five errors reach the threshold whichever loops served them. Its lock is held
/// only for a decision.
final class OutlierTracker: Sendable {
    /// What identifies the cluster's endpoint set: a reload that keeps it keeps the detector's state.
    let fingerprint: Fingerprint
    private let detector: Mutex<OutlierDetector>

    struct Fingerprint: Hashable, Sendable {
        var endpoints: [String]
        var policy: OutlierPolicy
    }

    init(cluster: Cluster, policy: OutlierPolicy, now: MonotonicInstant) {
        fingerprint = Fingerprint(endpoints: cluster.endpoints.map(\.description), policy: policy)
        detector = Mutex(OutlierDetector(policy: policy, endpoints: cluster.endpoints.count, now: now))
    }

    /// Runs `body` on the detector, brought up to `now`.
    func withDetector<Result>(now: MonotonicInstant, _ body: (inout OutlierDetector) -> Result) -> Result {
        detector.withLock { detector in
            _ = detector.refresh(now: now)
            return body(&detector)
        }
    }

    func record(_ result: UpstreamResult, endpoint: Int, now: MonotonicInstant) {
        _ = detector.withLock { $0.record(result, endpoint: endpoint, now: now) }
    }

    /// For `/clusters`: which endpoints are ejected now.
    func ejected(now: MonotonicInstant) -> [Bool] {
        withDetector(now: now) { detector in (0..<detector.endpointCount).map { detector.isEjected($0) } }
    }

    static var now: MonotonicInstant { MonotonicInstant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }
}

/// The trackers of the live snapshot's clusters that have `outlierDetection`, by cluster index. A new
/// snapshot version gets its own table; a cluster whose name, endpoints and policy are unchanged keeps
/// its tracker, so a reload neither forgives an ejected endpoint nor resets a run of errors.
final class OutlierRegistry: Sendable {
    private struct State {
        var version = -1
        var trackers: [OutlierTracker?] = []
        /// This version's trackers by cluster name, and the previous version's (so that a reload keeps
        /// what it can, and memory holds two versions at most).
        var byName: [String: OutlierTracker] = [:]
        var previous: [String: OutlierTracker] = [:]
    }

    private let state = Mutex(State())

    /// The tracker of `cluster` (of snapshot `version`), or nil when it has no outlier detection.
    func tracker(for cluster: Cluster, version: Int) -> OutlierTracker? {
        guard let policy = cluster.outlierDetection else { return nil }
        return state.withLock { state in
            if version > state.version {
                state.version = version
                state.trackers.removeAll(keepingCapacity: true)
                state.previous = state.byName
                state.byName = [:]
            } else if version < state.version {
                // A request still on an older snapshot: its cluster's tracker by name, if there is one.
                return state.byName[cluster.name] ?? state.previous[cluster.name]
            }
            if cluster.index < state.trackers.count, let tracker = state.trackers[cluster.index] { return tracker }
            let fingerprint = OutlierTracker.Fingerprint(endpoints: cluster.endpoints.map(\.description), policy: policy)
            let tracker: OutlierTracker
            if let kept = state.byName[cluster.name] ?? state.previous[cluster.name], kept.fingerprint == fingerprint {
                tracker = kept
            } else {
                tracker = OutlierTracker(cluster: cluster, policy: policy, now: OutlierTracker.now)
            }
            state.byName[cluster.name] = tracker
            if state.trackers.count <= cluster.index {
                state.trackers.append(contentsOf: repeatElement(nil, count: cluster.index + 1 - state.trackers.count))
            }
            state.trackers[cluster.index] = tracker
            return tracker
        }
    }

    /// For `/clusters`: per cluster name, which endpoints are ejected.
    func ejections(of cluster: Cluster) -> [Bool]? {
        guard cluster.outlierDetection != nil, let tracker = state.withLock({ $0.byName[cluster.name] }) else { return nil }
        return tracker.ejected(now: OutlierTracker.now)
    }
}
