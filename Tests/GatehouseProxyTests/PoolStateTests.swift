import Testing
@testable import GatehouseProxy

final class FakeConnection {
    let id: Int
    var usable = true
    init(_ id: Int) { self.id = id }
}

@Suite struct IdleConnectionStackTests {
    @Test func reusesTheMostRecentlyReturnedConnectionFirst() throws {
        var stack = IdleConnectionStack<FakeConnection, String>(maxIdlePerKey: 4)
        let a = FakeConnection(1), b = FakeConnection(2)
        #expect(stack.put(a, key: "k") == nil)
        #expect(stack.put(b, key: "k") == nil)
        #expect(stack.take("k", isUsable: { $0.usable })?.id == 2)
        #expect(stack.take("k", isUsable: { $0.usable })?.id == 1)
        #expect(stack.take("k", isUsable: { $0.usable }) == nil)
    }

    @Test func keysAreSeparate() throws {
        var stack = IdleConnectionStack<FakeConnection, String>(maxIdlePerKey: 4)
        _ = stack.put(FakeConnection(1), key: "cluster-a|10.0.0.1:80")
        #expect(stack.take("cluster-b|10.0.0.1:80", isUsable: { _ in true }) == nil)
        #expect(stack.count("cluster-a|10.0.0.1:80") == 1)
    }

    @Test func unusableConnectionsAreSkippedAndDropped() throws {
        var stack = IdleConnectionStack<FakeConnection, String>(maxIdlePerKey: 4)
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
        var stack = IdleConnectionStack<FakeConnection, String>(maxIdlePerKey: 2)
        _ = stack.put(FakeConnection(1), key: "k")
        _ = stack.put(FakeConnection(2), key: "k")
        #expect(stack.put(FakeConnection(3), key: "k")?.id == 1)
        #expect(stack.count("k") == 2)
    }

    @Test func removeForgetsAConnectionClosedWhileIdle() throws {
        var stack = IdleConnectionStack<FakeConnection, String>(maxIdlePerKey: 4)
        let a = FakeConnection(1)
        _ = stack.put(a, key: "k")
        stack.remove(a, key: "k")
        #expect(stack.take("k", isUsable: { _ in true }) == nil)
    }
}

@Suite struct ClusterLoopTableTests {
    @Test func cyclesThroughEveryEndpointEvenlyFromTheStartGiven() {
        var table = ClusterLoopTable<String>()
        table.prepare(version: 1, cluster: 0, endpoints: 3)
        var counts = [0, 0, 0]
        var order: [Int] = []
        for _ in 0..<300 {
            let index = table.nextEndpoint(cluster: 0, count: 3, start: 2)
            counts[index] += 1
            if order.count < 4 { order.append(index) }
        }
        #expect(counts == [100, 100, 100])
        #expect(order == [2, 0, 1, 2])
    }

    @Test func clustersAndResolvedAddressesHaveTheirOwnPositions() {
        var table = ClusterLoopTable<String>()
        table.prepare(version: 1, cluster: 0, endpoints: 2)
        table.prepare(version: 1, cluster: 3, endpoints: 1)
        #expect(table.nextEndpoint(cluster: 0, count: 2, start: 0) == 0)
        #expect(table.nextEndpoint(cluster: 3, count: 1, start: 0) == 0)
        #expect(table.nextResolved(cluster: 0, endpoint: 1, count: 4, start: 1) == 1)
        #expect(table.nextEndpoint(cluster: 0, count: 2, start: 0) == 1)
        #expect(table.nextResolved(cluster: 0, endpoint: 1, count: 4, start: 0) == 2)
        #expect(table.nextResolved(cluster: 0, endpoint: 0, count: 4, start: 3) == 3)
    }

    @Test func requestsInFlightAreCountedUntilTheyEndAndForgottenWithTheVersion() {
        var table = ClusterLoopTable<String>()
        table.prepare(version: 1, cluster: 0, endpoints: 3)
        table.began(cluster: 0, endpoint: 2)
        table.began(cluster: 0, endpoint: 2)
        table.began(cluster: 0, endpoint: 0)
        #expect(table.active(cluster: 0) == [1, 0, 2])
        table.ended(version: 1, cluster: 0, endpoint: 2)
        table.ended(version: 1, cluster: 0, endpoint: 1)  // never began: no negative count
        #expect(table.active(cluster: 0) == [1, 0, 1])
        // A reload starts the table afresh; requests that began under the old version end uncounted.
        table.prepare(version: 2, cluster: 0, endpoints: 3)
        table.began(cluster: 0, endpoint: 1)
        table.ended(version: 1, cluster: 0, endpoint: 1)
        #expect(table.active(cluster: 0) == [0, 1, 0])
    }

    @Test func targetsAreBuiltOncePerSnapshotVersion() {
        var table = ClusterLoopTable<String>()
        var built = 0
        func target(version: Int) -> String? {
            table.prepare(version: version, cluster: 1, endpoints: 2)
            return table.target(cluster: 1, endpoint: 1) {
                built += 1
                return "v\(version)"
            }
        }
        #expect(target(version: 1) == "v1")
        #expect(target(version: 1) == "v1")
        #expect(built == 1)
        // A reload: index 1 may be another cluster now, so nothing carries over.
        #expect(target(version: 2) == "v2")
        #expect(built == 2)
    }

    @Test func anEndpointCountChangeOrNoEndpointsStaysInRange() {
        var position: Int? = 4
        #expect(RoundRobin.next(&position, count: 2, start: 0) == 0)
        #expect(RoundRobin.next(&position, count: 0, start: 0) == 0)
    }
}

@Suite struct ConnectionWaitListTests {
    typealias WaitList = ConnectionWaitList<String, FakeConnection>

    @Test func aGrantedSlotConnectsAndARefusedOneWaitsOnlyWhereTheLoopHasAConnection() {
        var list = WaitList()
        #expect(list.admission(for: "a", slotGranted: true) == .connect)
        #expect(list.admission(for: "a", slotGranted: false) == .connectOverLimit,
                "a loop with no connection to the endpoint never waits on other loops' connections")
        list.connectionOpened("a")
        #expect(list.admission(for: "a", slotGranted: false) == .wait)
        #expect(list.admission(for: "b", slotGranted: false) == .connectOverLimit, "counts are per endpoint key")
        list.connectionGone("a")
        #expect(list.openConnections("a") == 0)
        #expect(list.admission(for: "a", slotGranted: false) == .connectOverLimit)
    }

    @Test func waitersAreServedOldestFirstPerKey() {
        var list = WaitList()
        let first = FakeConnection(1), second = FakeConnection(2), other = FakeConnection(3)
        list.wait(first, for: "a")
        list.wait(other, for: "b")
        list.wait(second, for: "a")
        #expect(list.waiterCount == 3)
        #expect(list.firstWaiter(for: "a") === first, "looking does not take")
        #expect(list.takeFirstWaiter(for: "a") === first)
        #expect(list.takeFirstWaiter(for: "a") === second)
        #expect(list.takeFirstWaiter(for: "a") == nil)
        #expect(list.takeFirstWaiter(for: "b") === other)
        #expect(list.waiterCount == 0)
    }

    @Test func aWaiterThatGivesUpLeavesItsPlace() {
        var list = WaitList()
        let leaving = FakeConnection(1), staying = FakeConnection(2)
        list.wait(leaving, for: "a")
        list.wait(staying, for: "a")
        list.remove(leaving, for: "a")
        list.remove(leaving, for: "a")
        #expect(list.waiterCount == 1, "removing twice removes once")
        #expect(list.takeFirstWaiter(for: "a") === staying)
    }

    @Test func closingMoreConnectionsThanWereOpenedNeverGoesNegative() {
        var list = WaitList()
        list.connectionOpened("a")
        list.connectionGone("a")
        list.connectionGone("a")
        #expect(list.openConnections("a") == 0)
        list.connectionOpened("a")
        #expect(list.openConnections("a") == 1)
    }
}
