import GatehouseSnapshot
import GatehouseUpstream
import Synchronization

/// One cluster's circuit-breaker counts, shared by every event loop (Envoy's limits hold per cluster
/// across workers): connections open, requests in flight, requests waiting for an upstream connection,
/// and retries under way. A slot is taken before the work and given back when it ends; a slot over the
/// limit is refused, never queued.
final class ClusterCircuitBreaker: Sendable {
    let limits: CircuitBreakerLimits
    private let connections = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let retries = Atomic<Int>(0)

    init(limits: CircuitBreakerLimits) {
        self.limits = limits
    }

    /// Takes a connection slot for a connection about to be made; false (nothing taken) when
    /// `maxConnections` are open.
    func beginConnection() -> Bool { take(connections, under: limits.maxConnections) }
    /// Counts a connection made over the limit: Envoy gives every endpoint a request picks at least one
    /// connection per worker pool, so a loop with none to it connects anyway.
    func forceConnection() { connections.add(1, ordering: .relaxed) }
    func endConnection() { connections.subtract(1, ordering: .relaxed) }
    var connectionsOpen: Int { connections.load(ordering: .relaxed) }

    /// Takes a request slot; false (nothing taken) when `maxRequests` are in flight.
    func beginRequest() -> Bool { take(requests, under: limits.maxRequests) }
    func endRequest() { requests.subtract(1, ordering: .relaxed) }

    /// Takes a pending slot while a request waits for a connection (being made, or coming free); false
    /// when `maxPendingRequests` wait.
    func beginPending() -> Bool { take(pending, under: limits.maxPendingRequests) }
    func endPending() { pending.subtract(1, ordering: .relaxed) }

    /// Takes a retry slot, held from the decision to retry until that retry's try ends; false when
    /// `maxRetries` are under way.
    func beginRetry() -> Bool { take(retries, under: limits.maxRetries) }
    func endRetry() { retries.subtract(1, ordering: .relaxed) }

    var requestsInFlight: Int { requests.load(ordering: .relaxed) }

    private func take(_ counter: borrowing Atomic<Int>, under limit: Int?) -> Bool {
        // Add first, then check what was there: two loops racing for the last slot cannot both win.
        let before = counter.add(1, ordering: .relaxed).oldValue
        guard CircuitBreakerLimits.admits(before, under: limit) else {
            counter.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }
}

/// The circuit breakers of the clusters whose DestinationRule sets `connectionPool` limits.
final class CircuitBreakerRegistry: Sendable {
    private let registry = ClusterStateRegistry<ClusterCircuitBreaker>()

    func breaker(for cluster: Cluster, version: Int) -> ClusterCircuitBreaker? {
        guard let limits = cluster.circuitBreakers else { return nil }
        return registry.state(for: cluster, version: version, fingerprint: { limits },
                              make: { ClusterCircuitBreaker(limits: limits) })
    }
}
