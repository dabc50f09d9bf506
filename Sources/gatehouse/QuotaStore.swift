import GatehouseRateLimit
import GatehouseSnapshot
import GatehouseStateStore

/// Opens the Bootstrap's rate-limit store at start-up: nothing for `memory`; for `sqlite`, the file under
/// `stateDir` (made if missing, moved aside if corrupt), with the saved quota counts of the first
/// snapshot's rules restored before a request is served.
enum QuotaStore {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ settings: RateLimitStoreSettings, snapshot: Snapshot, counters: CounterStore) throws -> QuotaPersistence? {
        guard case .sqlite(let directory) = settings else { return nil }
        do {
            let database = try QuotaDatabase.open(directory: directory) { Log.warning($0) }
            let persistence = QuotaPersistence(database: database, counters: counters)
            try persistence.prepare(snapshot.rateLimits.identities, version: snapshot.version, now: WallClock.nanoseconds())
            Log.info("rate-limit state: \(database.path) (quota counts written behind every second)")
            return persistence
        } catch {
            throw Failure(description: "rate-limit state in \(directory) cannot be used: \(error)")
        }
    }
}
