import Synchronization

/// What one rule's counters are kept under: its name, its key and its arithmetic. A reload that keeps
/// all three keeps the counters (a client half-way through its burst or its monthly quota stays there);
/// changing any of them starts the rule afresh, since the old counts would mean something else.
public struct CounterIdentity: Sendable, Hashable {
    /// `ns/policy/rule`.
    public var rule: String
    /// The key attributes, as written.
    public var key: [String]
    public var algorithm: RateLimitAlgorithm

    public init(rule: String, key: [String], algorithm: RateLimitAlgorithm) {
        self.rule = rule
        self.key = key
        self.algorithm = algorithm
    }

    /// The identity as one stable string, the same in every process (a durable store's rule column):
    /// `ns/policy/rule|attribute,attribute|quota:100000/Month/UTC`.
    public var persistentName: String {
        let arithmetic = switch algorithm {
        case .bucket(let bucket): "limit:\(bucket.requests)/\(bucket.unitNanoseconds)ns/\(bucket.burst)"
        case .quota(let quota): "quota:\(quota.requests)/\(quota.period.rawValue)/\(quota.calendar.zoneName)"
        }
        return "\(rule)|\(key.joined(separator: ","))|\(arithmetic)"
    }
}

/// The `memory` store: one `SharedCounterTable` per rule, shared by every event loop and kept across
/// reloads by `CounterIdentity`. A table the newest snapshot no longer names is dropped (a request
/// still on an older snapshot then counts in a table of its own for the moment it takes to finish).
public final class CounterStore: Sendable {
    private struct Tables {
        var version = -1
        var current: [CounterIdentity: SharedCounterTable] = [:]
        var previous: [CounterIdentity: SharedCounterTable] = [:]
    }

    private let tables = Mutex(Tables())

    public init() {}

    /// The tables for the rules of snapshot `version`, in order. Called once per loop and version, and
    /// before the snapshot goes live by whoever restores saved counters (`made` hears of each table
    /// made new, so it can fill it before any request counts in it).
    public func tables(for identities: [CounterIdentity], version: Int,
                       made: (CounterIdentity, SharedCounterTable) -> Void = { _, _ in }) -> [SharedCounterTable] {
        tables.withLock { tables in
            if version > tables.version {
                tables.version = version
                let live = Set(identities)
                tables.previous = tables.current.merging(tables.previous) { newer, _ in newer }.filter { live.contains($0.key) }
                tables.current = [:]
            }
            return identities.map { identity in
                if let table = tables.current[identity] { return table }
                let table: SharedCounterTable
                if let kept = tables.previous[identity] {
                    table = kept
                } else {
                    table = SharedCounterTable(initial: RateLimitAlgorithm.initialState)
                    made(identity, table)
                }
                if version >= tables.version { tables.current[identity] = table }
                return table
            }
        }
    }

    /// Every live table with its identity (for the sweeper and the SQLite writer).
    public var all: [(identity: CounterIdentity, table: SharedCounterTable)] {
        tables.withLock { tables in
            tables.current.merging(tables.previous) { current, _ in current }.map { ($0.key, $0.value) }
        }
    }

    /// The table of the live rule whose identity reads `persistentName` (for `explain --admin`).
    public func table(persistentName: String) -> (identity: CounterIdentity, table: SharedCounterTable)? {
        tables.withLock { tables in
            tables.current.first { $0.key.persistentName == persistentName }.map { ($0.key, $0.value) }
        }
    }

    /// Forgets the keys that are back to their initial allowance, so keys made of client input (an IP,
    /// an API key) do not pile up. Returns the keys left.
    @discardableResult
    public func sweep(now: Int64) -> Int {
        all.reduce(0) { left, entry in
            let algorithm = entry.identity.algorithm
            let window = algorithm.window(at: now)
            return left + entry.table.sweep { algorithm.isIdle(state: $0, now: now, window: window) }
        }
    }
}

/// One event loop's way to its rules' counters for the live snapshot: per rule, its table, a cache of
/// its cells and its current quota period. Confined to its loop, so the hot path takes no lock: a
/// dictionary lookup and one compare-and-swap per rule.
public final class LoopRateLimiter {
    /// One rule as this loop reaches its counters. A class, so a take reads the rule's arithmetic in
    /// place rather than copying it (a quota's calendar is retained by every copy).
    private final class Rule {
        let algorithm: RateLimitAlgorithm
        let table: SharedCounterTable
        var cache: LoopCounterCache
        private var windows = QuotaWindowCache()

        init(algorithm: RateLimitAlgorithm, table: SharedCounterTable, cache: LoopCounterCache) {
            self.algorithm = algorithm
            self.table = table
            self.cache = cache
        }

        func window(at now: Int64) -> QuotaWindow? { windows.window(of: algorithm, at: now) }
    }

    private var version = -1
    private var rules: [Rule] = []

    public init() {}

    /// Binds the limiter to the rules of snapshot `version` (a no-op while the version stays).
    public func prepare(version: Int, identities: @autoclosure () -> [CounterIdentity], store: CounterStore) {
        guard version != self.version else { return }
        let identities = identities()
        let tables = store.tables(for: identities, version: version)
        // A rule whose table is unchanged keeps this loop's cells for it.
        var kept: [ObjectIdentifier: LoopCounterCache] = [:]
        for rule in rules { kept[ObjectIdentifier(rule.table)] = rule.cache }
        rules = zip(identities, tables).map { identity, table in
            Rule(algorithm: identity.algorithm, table: table, cache: kept[ObjectIdentifier(table)] ?? LoopCounterCache())
        }
        self.version = version
    }

    /// Takes one request from rule `index`'s counter for `key` at `now`.
    public func take(rule index: Int, key: String, now: Int64) -> RateLimitDecision {
        let rule = rules[index]
        let window = rule.window(at: now)
        return rule.cache.apply(key, in: rule.table) { rule.algorithm.take(state: $0, now: now, window: window) }
    }

    /// Gives back what `take` took, when a later rule refused the request.
    public func refund(rule index: Int, key: String, now: Int64) {
        let rule = rules[index]
        let window = rule.window(at: now)
        rule.cache.apply(key, in: rule.table) { (rule.algorithm.refund(state: $0, window: window), ()) }
    }

    /// The requests rule `index` would still let through for `key`, taking none.
    public func remaining(rule index: Int, key: String, now: Int64) -> Int {
        let rule = rules[index]
        let state = rule.cache.peek(key, in: rule.table)
        return rule.algorithm.remaining(state: state, now: now, window: rule.window(at: now))
    }
}
