/// The pure bookkeeping behind `tcp.maxConnections` on one loop: how many connections each endpoint key
/// has here (open or being made), and the requests waiting, oldest first, for one of them to come free.
/// The shell asks the cluster's shared count whether a connection may be made; this says what follows.
struct ConnectionWaitList<Key: Hashable, Waiter: AnyObject> {
    private var open: [Key: Int] = [:]
    private var waiting: [Key: [Waiter]] = [:]
    /// Waiters over every key: zero on the hot path, which then skips the per-key lookup.
    private(set) var waiterCount = 0

    enum Admission: Equatable {
        /// Within the cluster's limit (or no limit): make a connection.
        case connect
        /// Over the limit, but this loop has no connection to the endpoint: make one anyway. Envoy gives
        /// an endpoint a request picked at least one connection per worker pool, so a loop never waits on
        /// connections only other loops can free.
        case connectOverLimit
        /// Over the limit: wait for one of this loop's connections to the endpoint to come free.
        case wait
    }

    /// What a request that found no idle connection to `key` does, given whether the cluster granted it
    /// a connection slot.
    func admission(for key: Key, slotGranted: Bool) -> Admission {
        if slotGranted { return .connect }
        return openConnections(key) == 0 ? .connectOverLimit : .wait
    }

    func openConnections(_ key: Key) -> Int { open[key] ?? 0 }

    /// A connection to `key` is being made.
    mutating func connectionOpened(_ key: Key) { open[key, default: 0] += 1 }

    /// A connection to `key` closed, or failed to connect.
    mutating func connectionGone(_ key: Key) {
        guard let count = open[key] else { return }
        open[key] = count > 1 ? count - 1 : nil
    }

    mutating func wait(_ waiter: Waiter, for key: Key) {
        waiting[key, default: []].append(waiter)
        waiterCount += 1
    }

    /// The request that has waited longest for `key`, without taking it off the list.
    func firstWaiter(for key: Key) -> Waiter? {
        guard waiterCount > 0 else { return nil }
        return waiting[key]?.first
    }

    /// Takes the request that has waited longest for `key` off the list.
    mutating func takeFirstWaiter(for key: Key) -> Waiter? {
        guard waiterCount > 0, var list = waiting[key], !list.isEmpty else { return nil }
        let first = list.removeFirst()
        waiting[key] = list.isEmpty ? nil : list
        waiterCount -= 1
        return first
    }

    /// A waiting request gave up (its timeout, or its client went away).
    mutating func remove(_ waiter: Waiter, for key: Key) {
        guard var list = waiting[key], let index = list.firstIndex(where: { $0 === waiter }) else { return }
        list.remove(at: index)
        waiting[key] = list.isEmpty ? nil : list
        waiterCount -= 1
    }
}
