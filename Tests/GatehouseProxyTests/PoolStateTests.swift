import Testing
@testable import GatehouseProxy

final class FakeConnection {
    let id: Int
    var usable = true
    init(_ id: Int) { self.id = id }
}

@Suite struct IdleConnectionStackTests {
    @Test func reusesTheMostRecentlyReturnedConnectionFirst() throws {
        var stack = IdleConnectionStack<FakeConnection>(maxIdlePerKey: 4)
        let a = FakeConnection(1), b = FakeConnection(2)
        #expect(stack.put(a, key: "k") == nil)
        #expect(stack.put(b, key: "k") == nil)
        #expect(stack.take("k", isUsable: { $0.usable })?.id == 2)
        #expect(stack.take("k", isUsable: { $0.usable })?.id == 1)
        #expect(stack.take("k", isUsable: { $0.usable }) == nil)
    }

    @Test func keysAreSeparate() throws {
        var stack = IdleConnectionStack<FakeConnection>(maxIdlePerKey: 4)
        _ = stack.put(FakeConnection(1), key: "cluster-a|10.0.0.1:80")
        #expect(stack.take("cluster-b|10.0.0.1:80", isUsable: { _ in true }) == nil)
        #expect(stack.count("cluster-a|10.0.0.1:80") == 1)
    }

    @Test func unusableConnectionsAreSkippedAndDropped() throws {
        var stack = IdleConnectionStack<FakeConnection>(maxIdlePerKey: 4)
        let dead = FakeConnection(1), alive = FakeConnection(2), deadToo = FakeConnection(3)
        dead.usable = false
        deadToo.usable = false
        _ = stack.put(alive, key: "k")
        _ = stack.put(dead, key: "k")
        _ = stack.put(deadToo, key: "k")
        #expect(stack.take("k", isUsable: { $0.usable })?.id == 2)
        #expect(stack.count("k") == 0)
    }

    @Test func overCapacityEvictsTheOldest() throws {
        var stack = IdleConnectionStack<FakeConnection>(maxIdlePerKey: 2)
        _ = stack.put(FakeConnection(1), key: "k")
        _ = stack.put(FakeConnection(2), key: "k")
        #expect(stack.put(FakeConnection(3), key: "k")?.id == 1)
        #expect(stack.count("k") == 2)
    }

    @Test func removeForgetsAConnectionClosedWhileIdle() throws {
        var stack = IdleConnectionStack<FakeConnection>(maxIdlePerKey: 4)
        let a = FakeConnection(1)
        _ = stack.put(a, key: "k")
        stack.remove(a, key: "k")
        #expect(stack.take("k", isUsable: { _ in true }) == nil)
    }
}

@Suite struct RoundRobinTests {
    @Test func cyclesThroughEveryEndpointEvenly() throws {
        var roundRobin = RoundRobin()
        var counts = [0, 0, 0]
        for _ in 0..<300 { counts[roundRobin.next("c", count: 3)] += 1 }
        #expect(counts == [100, 100, 100])
    }

    @Test func clustersHaveTheirOwnPosition() throws {
        var roundRobin = RoundRobin()
        let first = roundRobin.next("a", count: 2)
        #expect(roundRobin.next("a", count: 2) == (first + 1) % 2)
        _ = roundRobin.next("b", count: 5)
        #expect(roundRobin.next("a", count: 2) == first)
    }

    @Test func survivesEndpointCountChanges() throws {
        var roundRobin = RoundRobin()
        for _ in 0..<5 { _ = roundRobin.next("c", count: 5) }
        #expect((0..<2).contains(roundRobin.next("c", count: 2)))
        #expect(roundRobin.next("c", count: 0) == 0)
    }
}
