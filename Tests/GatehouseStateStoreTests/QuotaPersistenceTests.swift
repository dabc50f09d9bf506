import Foundation
import Testing
import GatehouseRateLimit
@testable import GatehouseStateStore

/// The `sqlite` store on a real file in a temporary directory: counts written behind and restored in a
/// new process's store (a restart), only what changed written, old periods pruned, removed rules
/// forgotten, and a corrupt file moved aside rather than keeping the gateway down.
@Suite struct QuotaPersistenceTests {
    static let second: Int64 = 1_000_000_000
    /// 2026-12-07 12:00:00 UTC.
    static let noon = Int64(1_796_644_800) * second
    static let daily = CounterIdentity(
        rule: "istio-system/limits/daily", key: ["request.headers[x-api-key]"],
        algorithm: .quota(QuotaPolicy(requests: 5, period: .day, calendar: QuotaCalendar()!)))
    static let bucket = CounterIdentity(
        rule: "istio-system/limits/burst", key: ["source.ip"],
        algorithm: .bucket(TokenBucketPolicy(requests: 5, unitNanoseconds: 3_600 * second)))

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "gatehouse-quota-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A gateway process's view: a fresh memory store over the file in `directory`.
    func process(_ directory: String, identities: [CounterIdentity] = [daily, bucket], version: Int = 1,
                 now: Int64 = noon) throws -> (QuotaPersistence, LoopRateLimiter) {
        let counters = CounterStore()
        let database = try QuotaDatabase.open(directory: directory) { Issue.record("unexpected notice: \($0)") }
        let persistence = QuotaPersistence(database: database, counters: counters)
        try persistence.prepare(identities, version: version, now: now)
        let limiter = LoopRateLimiter()
        limiter.prepare(version: version, identities: identities, store: counters)
        return (persistence, limiter)
    }

    @Test func aQuotaSurvivesARestartAndABucketDoesNot() throws {
        let directory = try temporaryDirectory()
        do {
            let (persistence, limiter) = try process(directory)
            for _ in 0..<3 { #expect(limiter.take(rule: 0, key: "alice", now: Self.noon).allowed) }
            #expect(limiter.take(rule: 0, key: "bob", now: Self.noon).allowed)
            for _ in 0..<5 { _ = limiter.take(rule: 1, key: "10.0.0.1", now: Self.noon) }
            #expect(try persistence.flush() == 2, "the quota's two keys; buckets are not saved")
            #expect(try persistence.flush() == 0, "nothing changed since")
        }
        let (_, limiter) = try process(directory)
        #expect(limiter.remaining(rule: 0, key: "alice", now: Self.noon) == 2)
        #expect(limiter.remaining(rule: 0, key: "bob", now: Self.noon) == 4)
        #expect(limiter.remaining(rule: 1, key: "10.0.0.1", now: Self.noon) == 5)
    }

    @Test func countsOfAnEndedPeriodAreNotRestoredAndArePruned() throws {
        let directory = try temporaryDirectory()
        let (persistence, limiter) = try process(directory)
        _ = limiter.take(rule: 0, key: "alice", now: Self.noon)
        try persistence.flush()
        let tomorrow = Self.noon + 86_400 * Self.second
        let (_, restarted) = try process(directory, now: tomorrow)
        #expect(restarted.remaining(rule: 0, key: "alice", now: tomorrow) == 5)
        try persistence.prune(now: tomorrow)
        #expect(try persistence.database.load(rule: Self.daily.persistentName).isEmpty)
    }

    @Test func aRuleRemovedOrChangedLosesItsRows() throws {
        let directory = try temporaryDirectory()
        let (persistence, limiter) = try process(directory)
        _ = limiter.take(rule: 0, key: "alice", now: Self.noon)
        try persistence.flush()
        let changed = CounterIdentity(rule: Self.daily.rule, key: Self.daily.key,
                                      algorithm: .quota(QuotaPolicy(requests: 6, period: .day, calendar: QuotaCalendar()!)))
        let (_, restarted) = try process(directory, identities: [changed])
        #expect(restarted.remaining(rule: 0, key: "alice", now: Self.noon) == 6)
        #expect(try persistence.database.load(rule: Self.daily.persistentName).isEmpty)
    }

    @Test func aReloadThatKeepsTheRuleKeepsItsLiveCounts() throws {
        let directory = try temporaryDirectory()
        let (persistence, limiter) = try process(directory)
        _ = limiter.take(rule: 0, key: "alice", now: Self.noon)
        // Version 2 before anything was flushed: the live table is kept, not refilled from the file.
        try persistence.prepare([Self.daily], version: 2, now: Self.noon)
        limiter.prepare(version: 2, identities: [Self.daily], store: persistenceCounters(persistence))
        #expect(limiter.remaining(rule: 0, key: "alice", now: Self.noon) == 4)
    }

    func persistenceCounters(_ persistence: QuotaPersistence) -> CounterStore { persistence.counters }

    @Test func aCorruptFileIsMovedAsideAndAFreshOneServes() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/" + QuotaDatabase.fileName
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        var notices: [String] = []
        let database = try QuotaDatabase.open(directory: directory, now: Date(timeIntervalSince1970: 1_800_000_000)) {
            notices.append($0)
        }
        #expect(notices.count == 1)
        #expect(notices.first?.contains("moved it to \(path).corrupt-1800000000") == true, "\(notices)")
        #expect(FileManager.default.fileExists(atPath: path + ".corrupt-1800000000"))
        try database.save([(rule: "r", key: "k", state: 7)])
        #expect(try database.load(rule: "r").map(\.state) == [7])
    }

    @Test func aMissingDirectoryIsCreated() throws {
        let directory = try temporaryDirectory() + "/nested/state"
        _ = try QuotaDatabase.open(directory: directory) { Issue.record("unexpected notice: \($0)") }
        #expect(FileManager.default.fileExists(atPath: directory + "/" + QuotaDatabase.fileName))
    }
}
