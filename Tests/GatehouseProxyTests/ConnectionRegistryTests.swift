import NIOCore
import NIOEmbedded
import Testing
@testable import GatehouseProxy

/// The drain waits on the registry for the last connection to close: no polling, and a wait that the
/// drain timeout cancels returns.
@Suite struct ConnectionRegistryTests {
    @Test func aWaitReturnsWhenTheLastConnectionCloses() async {
        let registry = ConnectionRegistry()
        let first = NIOAsyncTestingChannel(), second = NIOAsyncTestingChannel()
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
        // A testing channel and its pipeline hold each other until it is finished (LeakSanitizer); the
        // async one, as these tests hop threads across awaits.
        _ = try? await first.finish()
        _ = try? await second.finish()
    }

    @Test func aWaitWithNoConnectionsReturnsAtOnce() async {
        await ConnectionRegistry().waitUntilEmpty()
    }

    @Test func aCancelledWaitReturnsWhileConnectionsStayOpen() async {
        let registry = ConnectionRegistry()
        let open = NIOAsyncTestingChannel()
        _ = registry.add(open)
        let waiter = Task { await registry.waitUntilEmpty() }
        waiter.cancel()
        await waiter.value
        #expect(registry.count == 1)
        registry.remove(open)
        _ = try? await open.finish()
    }
}
