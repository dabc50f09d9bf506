import Foundation
import GatehouseRateLimit

/// The `sqlite` store: quota counters live in the memory store (`CounterStore`), so the request path
/// never waits on a disk, and are written behind to a `QuotaDatabase`: every second what changed is
/// saved in one transaction, and a table made for a quota rule is filled from the file before any
/// request counts in it. A `kill -9` loses at most the last second of counting and never resets a
/// quota. Token buckets are not saved: a bucket is full again within its unit anyway.
public final class QuotaPersistence: Sendable {
    public let database: QuotaDatabase
    let counters: CounterStore

    public init(database: QuotaDatabase, counters: CounterStore) {
        self.database = database
        self.counters = counters
    }

    /// Binds the counters to the rules of snapshot `version` before it goes live: each quota rule new to
    /// this process gets its saved keys back (those of its current period), and the rows of rules no
    /// longer configured are deleted. `now`: wall-clock nanoseconds.
    public func prepare(_ identities: [CounterIdentity], version: Int, now: Int64) throws {
        var failure: Error?
        _ = counters.tables(for: identities, version: version) { identity, table in
            guard case .quota = identity.algorithm, failure == nil else { return }
            do {
                let window = identity.algorithm.window(at: now)
                for row in try database.load(rule: identity.persistentName)
                where !identity.algorithm.isIdle(state: row.state, now: now, window: window) {
                    table.restore(row.key, state: row.state)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        try database.keepOnly(rules: Set(identities.filter(\.isQuota).map(\.persistentName)))
    }

    /// Saves every quota counter that changed since the last flush. Returns how many were saved.
    @discardableResult
    public func flush() throws -> Int {
        var rows: [(rule: String, key: String, state: Int64)] = []
        var cells: [(CounterCell, Int64)] = []
        for (identity, table) in counters.all where identity.isQuota {
            let name = identity.persistentName
            for entry in table.unsaved() {
                rows.append((name, entry.key, entry.state))
                cells.append((entry.cell, entry.state))
            }
        }
        try database.save(rows)
        // Marked once committed: a failed write is tried again next time.
        for (cell, state) in cells { SharedCounterTable.markSaved(cell, state: state) }
        return rows.count
    }

    /// Deletes the rows of quota periods that are over.
    public func prune(now: Int64) throws {
        for (identity, _) in counters.all where identity.isQuota {
            guard let window = identity.algorithm.window(at: now) else { continue }
            try database.delete(rule: identity.persistentName, below: QuotaPolicy.Usage(windowStart: window.start).packed)
        }
    }
}

extension CounterIdentity {
    var isQuota: Bool {
        if case .quota = algorithm { return true }
        return false
    }
}
