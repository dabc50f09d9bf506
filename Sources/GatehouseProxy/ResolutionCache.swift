import GatehouseDNS

/// The addresses of Kubernetes service names, as a state machine that returns what to do: use cached
/// addresses, use them and refresh in the background, wait for a query already running, or start one.
/// Pure (the clock is passed in), so TTL expiry, coalescing and failure handling are unit-tested
/// without sockets; `ServiceResolver` is its I/O shell.
struct ResolutionCache<Waiter> {
    enum Lookup {
        case use([DNSAddress])
        /// Use these (stale) addresses, and start one query to refresh them.
        case useAndRefresh([DNSAddress])
        /// A query for the name is running: the waiter is kept and answered when it ends.
        case wait
        /// The waiter is kept; start the query.
        case waitAndQuery
        /// The name failed to resolve moments ago: answer at once rather than ask again per request.
        case fail(String)
    }

    private struct Entry {
        var addresses: [DNSAddress] = []
        var failure: String?
        /// Monotonic nanoseconds after which the entry is refreshed (or, failed, asked again).
        var expiresAt: UInt64 = 0
        var querying = false
        var waiters: [Waiter] = []
    }

    /// A TTL of 0 would ask the resolver per request; a huge one would never notice a moved service.
    static var minimumTTLNanoseconds: UInt64 { 1_000_000_000 }
    static var maximumTTLNanoseconds: UInt64 { 300_000_000_000 }
    /// How long a failure is remembered before the name is asked again.
    static var failureHoldNanoseconds: UInt64 { 1_000_000_000 }

    private var entries: [String: Entry] = [:]

    mutating func lookup(_ name: String, now: UInt64, waiter: Waiter) -> Lookup {
        var entry = entries[name, default: Entry()]
        defer { entries[name] = entry }
        if !entry.addresses.isEmpty {
            if now < entry.expiresAt || entry.querying { return .use(entry.addresses) }
            entry.querying = true
            return .useAndRefresh(entry.addresses)
        }
        if let failure = entry.failure, now < entry.expiresAt, !entry.querying { return .fail(failure) }
        entry.waiters.append(waiter)
        if entry.querying { return .wait }
        entry.querying = true
        return .waitAndQuery
    }

    /// A query ended: the waiters to answer, and with what. A failed refresh keeps the last good
    /// addresses (a resolver hiccup must not take a healthy service down) and asks again after the hold.
    mutating func finished(_ name: String, _ result: Result<DNSAnswer, DNSFailure>,
                           now: UInt64) -> (waiters: [Waiter], outcome: Result<[DNSAddress], ResolutionFailure>) {
        var entry = entries[name, default: Entry()]
        entry.querying = false
        let waiters = entry.waiters
        entry.waiters = []
        switch result {
        case .success(let answer):
            entry.addresses = answer.addresses
            entry.failure = nil
            let ttl = min(max(UInt64(answer.ttl) * 1_000_000_000, Self.minimumTTLNanoseconds), Self.maximumTTLNanoseconds)
            entry.expiresAt = now + ttl
        case .failure(let failure):
            entry.expiresAt = now + Self.failureHoldNanoseconds
            if entry.addresses.isEmpty { entry.failure = "\(failure)" }
        }
        entries[name] = entry
        let outcome: Result<[DNSAddress], ResolutionFailure> = entry.addresses.isEmpty
            ? .failure(ResolutionFailure(name: name, reason: entry.failure ?? "no addresses"))
            : .success(entry.addresses)
        return (waiters, outcome)
    }
}

struct ResolutionFailure: Error, CustomStringConvertible {
    var name: String
    var reason: String
    var description: String { "cannot resolve \(name): \(reason)" }
}
