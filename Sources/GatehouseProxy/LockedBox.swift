import Synchronization

/// A value behind a mutex, for the few pieces of shared state outside the event loops.
final class NIOLockedValueBoxShim<Value>: Sendable where Value: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    @discardableResult
    func mutate<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}
