import Synchronization

/// Holds the live snapshot. Readers take a reference (one uncontended lock); a reload swaps it whole.
public final class SnapshotStore: Sendable {
    private let current: Mutex<Snapshot>

    public init(_ snapshot: Snapshot) { current = Mutex(snapshot) }

    public var snapshot: Snapshot { current.withLock { $0 } }

    public func replace(with snapshot: Snapshot) { current.withLock { $0 = snapshot } }
}
