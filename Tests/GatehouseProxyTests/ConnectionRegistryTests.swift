import NIOCore
import NIOEmbedded
import Testing
@testable import GatehouseProxy

/// The drain waits on the registry for the last connection to close: no polling, and a wait that the
/// drain timeout cancels returns.
@Suite struct ConnectionRegistryTests {
    /// A channel the registry can hold. It keeps channels only as identities, so a closed embedded one
    /// will do, finished at once: an open one and its pipeline hold each other until finished
    /// (LeakSanitizer), and finishing an async testing channel after these tests' awaits raced inside
    /// its testing event loop (ThreadSanitizer).
    private func channel() -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        _ = try? channel.finish()
        return channel
    }

    @Test func aWaitReturnsWhenTheLastConnectionCloses() async {
        let registry = ConnectionRegistry()
        let first = channel(), second = channel()
        #expect(registry.add(first) == 1)
        #expect(registry.add(second) == 2)
        let (events, continuation) = AsyncStream.makeStream(of: String.self)
        let waiter = Task {
            await registry.waitUntilEmpty()
            continuation.yield("empty")
        }
        registry.remove(first)
        #expect(registry.count == 1)
        registry.remove(second)
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next() == "empty")
        await waiter.value
    }

    @Test func aWaitWithNoConnectionsReturnsAtOnce() async {
        await ConnectionRegistry().waitUntilEmpty()
    }

    @Test func aCancelledWaitReturnsWhileConnectionsStayOpen() async {
        let registry = ConnectionRegistry()
        let open = channel()
        _ = registry.add(open)
        let waiter = Task { await registry.waitUntilEmpty() }
        waiter.cancel()
        await waiter.value
        #expect(registry.count == 1)
        registry.remove(open)
    }
}
