import Foundation
import GRDB

/// The `sqlite` store's file (`STATE_DIR/ratelimit.sqlite`): one row per (rule, key) with the counter's
/// word of state, as `RateLimitAlgorithm` keeps it. Only the background writer and start-up touch it;
/// the request path never does.
///
/// WAL with `synchronous=NORMAL`: a committed write survives the process being killed (`kill -9`),
/// which is what the write-behind promises; only a power cut can lose the last commits.
public final class QuotaDatabase: Sendable {
    public let path: String
    private let queue: DatabaseQueue

    public static let fileName = "ratelimit.sqlite"

    /// Opens (or creates) the database in `directory`. A file that is not a sound SQLite database is
    /// moved aside (`ratelimit.sqlite.corrupt-SECONDS`) and a fresh one made: a broken file must not keep
    /// the gateway from starting, and its counts are lost either way. `notice` hears what was done.
    public static func open(directory: String, now: Date = Date(), notice: (String) -> Void) throws -> QuotaDatabase {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(fileName)
        do {
            return try QuotaDatabase(path: path)
        } catch let problem as Unsound {
            let aside = "\(path).corrupt-\(Int(now.timeIntervalSince1970))"
            try FileManager.default.moveItem(atPath: path, toPath: aside)
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            notice("rate-limit state \(path) is not a sound SQLite database (\(problem.reason)); moved it to \(aside) "
                + "and started a new one: the quotas it held start again from zero")
            return try QuotaDatabase(path: path)
        }
    }

    /// The saved state of (`rule`, `key`), read-only from outside the gateway (for `explain`): nil when
    /// the file or the row does not exist.
    public static func savedState(directory: String, rule: String, key: String) throws -> Int64? {
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try queue.read { db in
            try Int64.fetchOne(db, sql: "SELECT state FROM counters WHERE rule = ? AND key = ?", arguments: [rule, key])
        }
    }

    /// The file failed its check.
    struct Unsound: Error {
        var reason: String
    }

    private init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.label = "gatehouse.ratelimit"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            let verdict = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            if verdict != "ok" { throw Unsound(reason: verdict ?? "no answer to quick_check") }
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS counters (
                      rule TEXT NOT NULL, key TEXT NOT NULL, state INTEGER NOT NULL, PRIMARY KEY (rule, key)
                    ) WITHOUT ROWID
                    """)
            }
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            throw Unsound(reason: error.message ?? "\(error.resultCode)")
        }
        self.queue = queue
    }

    /// Every saved key of `rule` with its state.
    public func load(rule: String) throws -> [(key: String, state: Int64)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT key, state FROM counters WHERE rule = ?", arguments: [rule]).map {
                (key: $0["key"], state: $0["state"])
            }
        }
    }

    /// Saves `rows` in one transaction.
    public func save(_ rows: [(rule: String, key: String, state: Int64)]) throws {
        guard !rows.isEmpty else { return }
        try queue.write { db in
            let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO counters (rule, key, state) VALUES (?, ?, ?)")
            for row in rows { try statement.execute(arguments: [row.rule, row.key, row.state]) }
        }
    }

    /// Deletes `rule`'s rows whose state is below `state` (a quota's periods before the current one).
    public func delete(rule: String, below state: Int64) throws {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM counters WHERE rule = ? AND state < ?", arguments: [rule, state])
        }
    }

    /// Deletes the rows of every rule not in `rules` (rules removed or changed by a reload).
    public func keepOnly(rules: Set<String>) throws {
        try queue.write { db in
            let saved = try String.fetchAll(db, sql: "SELECT DISTINCT rule FROM counters")
            for rule in saved where !rules.contains(rule) {
                try db.execute(sql: "DELETE FROM counters WHERE rule = ?", arguments: [rule])
            }
        }
    }
}
