import Testing
@testable import GatehouseProxy

/// Requests in flight and waiting, as each event loop counts them and `/clusters` adds them up.
@Suite struct ClusterLoadTests {
    @Test func aLoopCountsRequestsInFlightPerEndpointAndWaitsPerCluster() {
        var table = ClusterLoopTable<Int>()
        table.prepare(version: 1, cluster: 2, endpoints: 2)
        table.began(cluster: 2, endpoint: 1)
        table.began(cluster: 2, endpoint: 1)
        table.pendingBegan(cluster: 2)
        var load = table.load(version: 1)
        #expect(load.active[2] == [0, 2] && load.pending[2] == 1)
        table.ended(version: 1, cluster: 2, endpoint: 1)
        table.pendingEnded(version: 1, cluster: 2)
        load = table.load(version: 1)
        #expect(load.active[2] == [0, 1] && load.pending[2] == 0)
        #expect(table.load(version: 2).active.isEmpty, "another configuration's counts are not shown")
        table.pendingEnded(version: 0, cluster: 2)
        #expect(table.load(version: 1).pending[2] == 0, "a wait from an older configuration does not go below zero")
    }

    @Test func loopsAddUpPerEndpoint() {
        var total = ClusterLoad()
        total.add(ClusterLoad(active: [0: [1, 2]], pending: [0: 1]))
        total.add(ClusterLoad(active: [0: [3, 0], 1: [5]], pending: [0: 2]))
        #expect(total.active[0] == [4, 2] && total.active[1] == [5] && total.pending[0] == 3)
    }
}
