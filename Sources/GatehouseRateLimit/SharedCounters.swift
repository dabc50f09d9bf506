import Synchronization

/// One key's limit state, shared by every event loop: one atomic word, a token bucket's full-again
/// instant or a quota's packed period and count. Updated by compare-and-swap, so loops racing for the
/// last token cannot both get it.
public final class CounterCell: Sendable {
    /// The sweeper took the cell out of its table: whoever still holds it must look the key up again.
    static let retired = Int64.min

    let state: Atomic<Int64>
    /// The state last saved by a durable store (the `sqlite` store's writer), so it writes only what
    /// changed; only that writer touches it.
    let saved: Atomic<Int64>

    init(state: Int64) {
        self.state = Atomic(state)
        saved = Atomic(state)
    }
}

/// The gateway's counters for one rule, as the `memory` store keeps them: a table of cells by key,
/// behind striped locks that only a key's first request on a loop (or a cell's retirement) takes. Each
/// loop remembers the cells it has used (`LoopCounterCache`), so the hot path is a dictionary lookup on
/// the loop's own cache and one compare-and-swap: no lock, and exact across loops.
///
/// Idle keys are swept: a cell whose state says the key is back to its initial allowance is retired
/// (its word set to `CounterCell.retired` by compare-and-swap, so an update racing with the sweep wins
/// or loses as a whole) and dropped; a loop that meets a retired cell looks the key up again.
public final class SharedCounterTable: Sendable {
    /// One stripe's cells, behind its own lock.
    private final class Stripe: Sendable {
        let cells = StripeLock<[String: CounterCell]>([:])
    }

    private let stripes: [Stripe]
    /// The state a new key starts from.
    let initial: Int64
    /// Keys a stripe holds at most: keys are client input (an IP, an API key, a header), so a client
    /// inventing them must not grow memory without bound. A quota's keys live until its period ends.
    private let keysPerStripe: Int
    /// Where new keys are counted while their stripe is full: one cell they all share, so they are
    /// limited together (never let through unlimited) until the sweep makes room.
    private let overflow: StripeLock<CounterCell>
    private let overflowLookups = Atomic<Int>(0)

    /// Keys a rule's table holds by default (about 250 MB at most): past it, new keys share one counter.
    public static let defaultMaxKeys = 1 << 20

    public init(initial: Int64 = 0, stripes count: Int = 16, maxKeys: Int = SharedCounterTable.defaultMaxKeys) {
        self.initial = initial
        stripes = (0..<max(1, count)).map { _ in Stripe() }
        keysPerStripe = max(1, maxKeys / max(1, count))
        overflow = StripeLock(CounterCell(state: initial))
    }

    /// How many times a new key was counted in the shared overflow cell (its stripe was full) since the
    /// last call: the sweep reports each batch once.
    public func overflowsSinceLastAsked() -> Int { overflowLookups.exchange(0, ordering: .relaxed) }

    private func stripe(_ key: String) -> Int {
        Int(UInt(bitPattern: key.hashValue) % UInt(stripes.count))
    }

    /// The live cell for `key`, made when the key is new.
    func cell(for key: String) -> CounterCell {
        let found: CounterCell? = stripes[stripe(key)].cells.withLock { cells in
            if let cell = cells[key] { return cell }
            guard cells.count < keysPerStripe else { return nil }
            let cell = CounterCell(state: initial)
            cells[key] = cell
            return cell
        }
        if let found { return found }
        overflowLookups.add(1, ordering: .relaxed)
        return overflow.withLock { $0 }
    }

    /// The state `key`'s next request would be decided by, making no cell: its own cell's; the shared
    /// overflow cell's while its stripe is full and it has none (it would be counted there); nil for a
    /// key not counted (never seen, or swept once idle).
    public func storedState(of key: String) -> Int64? {
        // nil: the stripe is full and the key has no cell of its own.
        let own: Int64?? = stripes[stripe(key)].cells.withLock { cells in
            if let cell = cells[key] {
                let state = cell.state.load(ordering: .acquiring)
                return .some(state == CounterCell.retired ? nil : state)
            }
            return cells.count < keysPerStripe ? .some(nil) : nil
        }
        if let own { return own }
        return overflow.withLock { $0.state.load(ordering: .acquiring) }
    }

    /// Puts back a state saved by a durable store, for a key not counted yet in this process (a key
    /// already live keeps what it has: it is newer).
    public func restore(_ key: String, state: Int64) {
        stripes[stripe(key)].cells.withLock { cells in
            if cells[key] == nil { cells[key] = CounterCell(state: state) }
        }
    }

    /// The keys whose state changed since it was last saved, with that state; `markSaved` records the
    /// save once it is committed.
    public func unsaved() -> [(key: String, state: Int64, cell: CounterCell)] {
        var out: [(key: String, state: Int64, cell: CounterCell)] = []
        for stripe in stripes {
            stripe.cells.withLock { cells in
                for (key, cell) in cells {
                    let state = cell.state.load(ordering: .acquiring)
                    if state != CounterCell.retired, state != cell.saved.load(ordering: .relaxed) { out.append((key, state, cell)) }
                }
            }
        }
        return out
    }

    public static func markSaved(_ cell: CounterCell, state: Int64) {
        cell.saved.store(state, ordering: .relaxed)
    }

    /// Retires and drops the cells whose state `isIdle` says is as good as new (a full bucket, a quota
    /// period over). Returns how many keys are left.
    @discardableResult
    public func sweep(isIdle: (Int64) -> Bool) -> Int {
        var left = 0
        for stripe in stripes {
            stripe.cells.withLock { cells in
                cells = cells.filter { _, cell in
                    let current = cell.state.load(ordering: .acquiring)
                    guard isIdle(current),
                          cell.state.compareExchange(expected: current, desired: CounterCell.retired,
                                                     ordering: .acquiringAndReleasing).exchanged else { return true }
                    return false
                }
                left += cells.count
            }
        }
        // Room again: the keys counted together go back to counters of their own (the loops holding the
        // shared cell see it retired and look their key up again); what they used stays in the new one.
        if left < keysPerStripe * stripes.count {
            overflow.withLock { cell in
                let current = cell.state.load(ordering: .acquiring)
                guard current != initial,
                      cell.state.compareExchange(expected: current, desired: CounterCell.retired,
                                                 ordering: .acquiringAndReleasing).exchanged else { return }
                cell = CounterCell(state: current)
            }
        }
        return left
    }

    public var count: Int { stripes.reduce(0) { total, stripe in total + stripe.cells.withLock { $0.count } } }
}

/// One event loop's cells of one table, by key: the lock-free fast path to the shared state. Confined
/// to its loop; bounded (cleared when it grows past `limit`, the cells living on in the table).
public struct LoopCounterCache {
    private var cells: [String: CounterCell] = [:]
    let limit: Int

    public init(limit: Int = 65_536) { self.limit = limit }

    /// Applies `update` to `key`'s state atomically and returns what it decided. `update` maps the
    /// current state to the next one and the decision; returning the state unchanged writes nothing.
    /// It may run more than once when another loop changes the state meanwhile, so it must be pure.
    public mutating func apply<Decision>(_ key: String, in table: SharedCounterTable,
                                         _ update: (Int64) -> (state: Int64, decision: Decision)) -> Decision {
        var cell = cachedCell(key, in: table)
        while true {
            let current = cell.state.load(ordering: .acquiring)
            if current == CounterCell.retired {
                cells[key] = nil
                cell = cachedCell(key, in: table)
                continue
            }
            let (next, decision) = update(current)
            if next == current { return decision }
            if cell.state.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing).exchanged {
                return decision
            }
        }
    }

    /// The state `key` has now, without changing it (the initial state for a key never seen).
    public mutating func peek(_ key: String, in table: SharedCounterTable) -> Int64 {
        while true {
            let current = cachedCell(key, in: table).state.load(ordering: .acquiring)
            if current != CounterCell.retired { return current }
            cells[key] = nil
        }
    }

    private mutating func cachedCell(_ key: String, in table: SharedCounterTable) -> CounterCell {
        if let cell = cells[key] { return cell }
        if cells.count >= limit { cells.removeAll(keepingCapacity: true) }
        let cell = table.cell(for: key)
        cells[key] = cell
        return cell
    }
}
