import GatehouseDNS

/// The addresses of Kubernetes service names, as a state machine that returns what to do: use cached
/// addresses, use them and refresh in the background, wait for a query already running, or start one.
/// Pure (the clock is passed in), so TTL expiry, coalescing and failure handling are unit-tested
/// without sockets; `ServiceResolver` is its I/O shell.
/// `Address` is what the caller connects to (a socket address with its port), built once per answer.
struct ResolutionCache<Address, Waiter> {
    enum Lookup {
        case use([Address])
        /// Use these (stale) addresses, and start one query to refresh them.
        case useAndRefresh([Address])
        /// A query for the name is running: the waiter is kept and answered when it ends.
        case wait
        /// The waiter is kept; start the query.
        case waitAndQuery
        /// The name failed to resolve moments ago: answer at once rather than ask again per request.
        case fail(String)
    }

    private struct Entry {
        var addresses: [Address] = []
        var failure: String?
        /// Monotonic nanoseconds after which the entry is refreshed (or, failed, asked again).
        var expiresAt: UInt64 = 0
        /// When the addresses were last confirmed by an answer.
        var resolvedAt: UInt64 = 0
        var querying = false
        var waiters: [Waiter] = []
    }

    /// A TTL of 0 would ask the resolver per request; a huge one would never notice a moved service.
    static var minimumTTLNanoseconds: UInt64 { 1_000_000_000 }
    static var maximumTTLNanoseconds: UInt64 { 300_000_000_000 }
    /// How long a failure is remembered before the name is asked again.
    static var failureHoldNanoseconds: UInt64 { 1_000_000_000 }
    /// How long the last good addresses outlive failing refreshes: past this, the name fails.
    static var staleLimitNanoseconds: UInt64 { 600_000_000_000 }
    /// Names can come from requests (ServiceEntry `resolution: NONE`): the table is bounded, dropping
    /// expired names first.
    static var maximumEntries: Int { 10_000 }

    private var entries: [String: Entry] = [:]

    /// `waiter` is called only when the caller has to wait (so a cache hit builds none).
    mutating func lookup(_ name: String, now: UInt64, waiter: () -> Waiter) -> Lookup {
        if entries[name] == nil, entries.count >= Self.maximumEntries { evict(now: now) }
        var entry = entries[name, default: Entry()]
        defer { entries[name] = entry }
        if !entry.addresses.isEmpty {
            if now < entry.expiresAt || entry.querying { return .use(entry.addresses) }
            entry.querying = true
            return .useAndRefresh(entry.addresses)
        }
        if let failure = entry.failure, now < entry.expiresAt, !entry.querying { return .fail(failure) }
        entry.waiters.append(waiter())
        if entry.querying { return .wait }
        entry.querying = true
        return .waitAndQuery
    }

    /// A query ended: the waiters to answer, and with what. A failed refresh keeps the last good
    /// addresses (a resolver hiccup must not take a healthy service down) and asks again after the hold.
    /// `result`: the addresses of the answer (non-empty) and its TTL in seconds.
    mutating func finished(_ name: String, _ result: Result<(addresses: [Address], ttl: UInt32), DNSFailure>,
                           now: UInt64) -> (waiters: [Waiter], outcome: Result<[Address], ResolutionFailure>) {
        var entry = entries[name, default: Entry()]
        entry.querying = false
        let waiters = entry.waiters
        entry.waiters = []
        switch result {
        case .success(let answer):
            entry.addresses = answer.addresses
            entry.failure = nil
            entry.resolvedAt = now
            let ttl = min(max(UInt64(answer.ttl) * 1_000_000_000, Self.minimumTTLNanoseconds), Self.maximumTTLNanoseconds)
            entry.expiresAt = now + ttl
        case .failure(let failure):
            entry.expiresAt = now + Self.failureHoldNanoseconds
            if !entry.addresses.isEmpty, now - entry.resolvedAt > Self.staleLimitNanoseconds { entry.addresses = [] }
            if entry.addresses.isEmpty { entry.failure = "\(failure)" }
        }
        entries[name] = entry
        let outcome: Result<[Address], ResolutionFailure> = entry.addresses.isEmpty
            ? .failure(ResolutionFailure(name: name, reason: entry.failure ?? "no addresses"))
            : .success(entry.addresses)
        return (waiters, outcome)
    }
}

extension ResolutionCache {
    /// Makes room: names with no query running whose entry expired go; if that is not enough, every
    /// name with no query running (a later request only asks again).
    private mutating func evict(now: UInt64) {
        entries = entries.filter { $0.value.querying || now < $0.value.expiresAt }
        if entries.count >= Self.maximumEntries { entries = entries.filter { $0.value.querying } }
    }

    var count: Int { entries.count }
}

struct ResolutionFailure: Error, CustomStringConvertible {
    var name: String
    var reason: String
    var description: String { "cannot resolve \(name): \(reason)" }
}
