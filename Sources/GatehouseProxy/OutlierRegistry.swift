import GatehouseSnapshot
import GatehouseUpstream
import NIOCore
import Synchronization

/// One cluster's `OutlierDetector`, shared by every event loop: Envoy keeps one detector per cluster,
/// not per worker, so five errors reach the threshold whichever loops served them. Its lock is held
/// only for a decision.
final class OutlierTracker: Sendable {
    private let detector: Mutex<OutlierDetector>

    /// What the detector's state depends on: a reload that keeps it keeps the state.
    struct Fingerprint: Hashable, Sendable {
        var endpoints: [String]
        var policy: OutlierPolicy
    }

    init(cluster: Cluster, policy: OutlierPolicy, now: MonotonicInstant) {
        detector = Mutex(OutlierDetector(policy: policy, endpoints: cluster.endpoints.count, now: now))
    }

    /// Runs `body` on the detector, brought up to `now`.
    func withDetector<Result>(now: MonotonicInstant, _ body: (inout OutlierDetector) -> Result) -> Result {
        detector.withLock { detector in
            _ = detector.refresh(now: now)
            return body(&detector)
        }
    }

    /// Returns how many endpoints the result ejected (0 or 1).
    @discardableResult
    func record(_ result: UpstreamResult, endpoint: Int, now: MonotonicInstant) -> Int {
        let events = detector.withLock { $0.record(result, endpoint: endpoint, now: now) }
        return events.filter { if case .ejected = $0 { true } else { false } }.count
    }

    /// For `/clusters`: which endpoints are ejected now.
    func ejected(now: MonotonicInstant) -> [Bool] {
        withDetector(now: now) { detector in (0..<detector.endpointCount).map { detector.isEjected($0) } }
    }

    static var now: MonotonicInstant { MonotonicInstant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }
}

/// The outlier detectors of the clusters that have `outlierDetection`.
final class OutlierRegistry: Sendable {
    private let registry = ClusterStateRegistry<OutlierTracker>()

    /// The tracker of `cluster` (of snapshot `version`), or nil when it has no outlier detection.
    func tracker(for cluster: Cluster, version: Int) -> OutlierTracker? {
        guard let policy = cluster.outlierDetection else { return nil }
        return registry.state(for: cluster, version: version, fingerprint: { Self.fingerprint(cluster, policy) },
                              make: { OutlierTracker(cluster: cluster, policy: policy, now: OutlierTracker.now) })
    }

    /// For `/clusters`: which endpoints of `cluster` are ejected now.
    func ejections(of cluster: Cluster) -> [Bool]? {
        guard let policy = cluster.outlierDetection,
              let tracker = registry.current(named: cluster.name, fingerprint: { Self.fingerprint(cluster, policy) }) else { return nil }
        return tracker.ejected(now: OutlierTracker.now)
    }

    private static func fingerprint(_ cluster: Cluster, _ policy: OutlierPolicy) -> AnyHashable {
        OutlierTracker.Fingerprint(endpoints: cluster.endpoints.map(\.description), policy: policy)
    }
}
