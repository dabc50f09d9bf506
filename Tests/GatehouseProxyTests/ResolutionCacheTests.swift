import GatehouseDNS
import Testing
@testable import GatehouseProxy

/// The TTL cache behind Kubernetes service names, driven with an injected clock.
@Suite struct ResolutionCacheTests {
    let second: UInt64 = 1_000_000_000
    let a = DNSAddress(bytes: [10, 0, 0, 1])!
    let b = DNSAddress(bytes: [10, 0, 0, 2])!

    func answer(_ addresses: [DNSAddress], ttl: UInt32) -> Result<(addresses: [DNSAddress], ttl: UInt32), DNSFailure> {
        .success((addresses, ttl))
    }

    @Test func onlyTheFirstLookupQueriesAndWaitersShareTheAnswer() throws {
        var cache = ResolutionCache<DNSAddress, Int>()
        guard case .waitAndQuery = cache.lookup("svc", now: 0, waiter: { 1 }) else { Issue.record("first lookup"); return }
        guard case .wait = cache.lookup("svc", now: 0, waiter: { 2 }) else { Issue.record("second lookup"); return }
        let (waiters, outcome) = cache.finished("svc", answer([a], ttl: 30), now: 0)
        #expect(waiters == [1, 2])
        #expect(try outcome.get() == [a])
        guard case .use(let cached) = cache.lookup("svc", now: 29 * second, waiter: { 3 }) else { Issue.record("cached"); return }
        #expect(cached == [a])
    }

    @Test func anExpiredEntryServesWhileOneRefreshRuns() throws {
        var cache = ResolutionCache<DNSAddress, Int>()
        _ = cache.lookup("svc", now: 0, waiter: { 1 })
        _ = cache.finished("svc", answer([a], ttl: 5), now: 0)
        guard case .useAndRefresh([a]) = cache.lookup("svc", now: 5 * second, waiter: { 2 }) else { Issue.record("refresh"); return }
        guard case .use([a]) = cache.lookup("svc", now: 6 * second, waiter: { 3 }) else { Issue.record("one refresh only"); return }
        let (waiters, outcome) = cache.finished("svc", answer([b], ttl: 5), now: 6 * second)
        #expect(waiters.isEmpty, "nobody waited for the refresh")
        #expect(try outcome.get() == [b])
    }

    @Test func aFailedRefreshKeepsTheLastAddressesAndAsksAgainSoon() throws {
        var cache = ResolutionCache<DNSAddress, Int>()
        _ = cache.lookup("svc", now: 0, waiter: { 1 })
        _ = cache.finished("svc", answer([a], ttl: 5), now: 0)
        _ = cache.lookup("svc", now: 5 * second, waiter: { 2 })
        let (_, outcome) = cache.finished("svc", .failure(.nameError), now: 5 * second)
        #expect(try outcome.get() == [a])
        guard case .use([a]) = cache.lookup("svc", now: 5 * second + second / 2, waiter: { 3 }) else { Issue.record("kept"); return }
        guard case .useAndRefresh([a]) = cache.lookup("svc", now: 6 * second, waiter: { 4 }) else { Issue.record("retry"); return }
    }

    @Test func theLastGoodAddressesOutliveFailuresOnlyForTheStaleLimit() throws {
        var cache = ResolutionCache<DNSAddress, Int>()
        _ = cache.lookup("svc", now: 0, waiter: { 1 })
        _ = cache.finished("svc", answer([a], ttl: 5), now: 0)
        let limit = ResolutionCache<DNSAddress, Int>.staleLimitNanoseconds
        _ = cache.lookup("svc", now: limit, waiter: { 2 })
        #expect(try cache.finished("svc", .failure(.nameError), now: limit).outcome.get() == [a])
        _ = cache.lookup("svc", now: limit + 2 * second, waiter: { 3 })
        guard case .failure = cache.finished("svc", .failure(.nameError), now: limit + 2 * second).outcome else {
            Issue.record("a name that failed for longer than the stale limit fails")
            return
        }
    }

    @Test func namesFromRequestsCannotGrowTheTableWithoutBound() {
        var cache = ResolutionCache<DNSAddress, Int>()
        let bound = ResolutionCache<DNSAddress, Int>.maximumEntries
        for index in 0..<(bound + 50) {
            let name = "host\(index).example.com"
            _ = cache.lookup(name, now: UInt64(index), waiter: { index })
            _ = cache.finished(name, answer([a], ttl: 1), now: UInt64(index))
        }
        #expect(cache.count <= bound)
        // Expired names go first; one still fresh stays.
        _ = cache.lookup("fresh", now: 0, waiter: { 0 })
        _ = cache.finished("fresh", answer([b], ttl: 300), now: 0)
        for index in 0..<(bound + 1) {
            let name = "later\(index).example.com"
            _ = cache.lookup(name, now: 10 * second, waiter: { index })
            _ = cache.finished(name, answer([a], ttl: 1), now: 10 * second)
        }
        #expect(cache.count <= bound)
    }

    @Test func aFailureIsHeldBrieflySoRequestsDoNotStormTheResolver() {
        var cache = ResolutionCache<DNSAddress, Int>()
        _ = cache.lookup("gone", now: 0, waiter: { 1 })
        let (waiters, outcome) = cache.finished("gone", .failure(.nameError), now: 0)
        #expect(waiters == [1])
        guard case .failure(let failure) = outcome else { Issue.record("failed"); return }
        #expect(failure.description == "cannot resolve gone: NXDOMAIN (no such name)")
        guard case .fail = cache.lookup("gone", now: second / 2, waiter: { 2 }) else { Issue.record("held"); return }
        guard case .waitAndQuery = cache.lookup("gone", now: second, waiter: { 3 }) else { Issue.record("asked again"); return }
    }

    @Test func ttlsAreClamped() {
        var cache = ResolutionCache<DNSAddress, Int>()
        _ = cache.lookup("zero", now: 0, waiter: { 1 })
        _ = cache.finished("zero", answer([a], ttl: 0), now: 0)
        guard case .use = cache.lookup("zero", now: second / 2, waiter: { 2 }) else { Issue.record("TTL 0 is held 1 s"); return }
        _ = cache.lookup("huge", now: 0, waiter: { 1 })
        _ = cache.finished("huge", answer([a], ttl: 86_400), now: 0)
        guard case .useAndRefresh = cache.lookup("huge", now: 300 * second, waiter: { 2 }) else { Issue.record("capped at 300 s"); return }
    }
}
