import Testing
@testable import GatehouseUpstream

/// Istio's locality load balancing as Envoy runs it: priorities by locality, traffic spilling to the
/// next priority as endpoints are ejected (overprovisioning 1.4), and `distribute` weights.
@Suite struct LocalityLoadBalancingTests {
    let here = Locality("us-east/zone-a/rack-1")

    @Test func aPriorityIsHowMuchOfTheLocalityMatches() {
        #expect(LocalityPlan.priority(of: Locality("us-east/zone-a/rack-1"), from: here) == 0)
        #expect(LocalityPlan.priority(of: Locality("us-east/zone-a/rack-2"), from: here) == 1)
        #expect(LocalityPlan.priority(of: Locality("us-east/zone-b"), from: here) == 2)
        #expect(LocalityPlan.priority(of: Locality("eu-west/zone-a/rack-1"), from: here) == 3)
    }

    @Test func failoverPutsTheNamedRegionBeforeOtherRegions() throws {
        let endpoints = ["ap-south/z", "us-east/zone-a/rack-1", "eu-west/z", "us-east/zone-b"].map(Locality.init)
        let plan = try #require(LocalityPlan.failover(endpoints: endpoints, gateway: here, failover: [("us-east", "eu-west")]))
        #expect(plan == .failover([[1], [3], [2], [0]]))
        #expect(plan.priority(ofEndpoint: 0) == 3 && plan.priority(ofEndpoint: 1) == 0)
        #expect(LocalityPlan.failover(endpoints: [here, here], gateway: here, failover: []) == nil, "one priority: no plan")
    }

    @Test func failoverPriorityRanksEndpointsByHowManyLeadingLabelsMatchTheGateways() throws {
        let gateway = ["topology.istio.io/network": "n1", "topology.kubernetes.io/region": "us-east", "version": "v1"]
        let endpoints: [[String: String]] = [
            ["topology.istio.io/network": "n1", "topology.kubernetes.io/region": "us-east"],  // both match
            ["topology.istio.io/network": "n1", "topology.kubernetes.io/region": "eu-west"],  // network only
            ["topology.istio.io/network": "n2", "topology.kubernetes.io/region": "us-east"],  // first fails: region not considered
            ["topology.istio.io/network": "n1", "topology.kubernetes.io/region": "us-east"],
        ]
        let plan = try #require(LocalityPlan.failoverPriority(
            endpoints: endpoints, gateway: gateway, labels: ["topology.istio.io/network", "topology.kubernetes.io/region"]))
        #expect(plan == .failover([[0, 3], [1], [2]]))
    }

    @Test func aKeyValueLabelMatchesTheEndpointAloneAndAbsentOnBothSidesIsAMatch() throws {
        let endpoints: [[String: String]] = [["version": "v1"], ["version": "v2"], [:]]
        let plan = try #require(LocalityPlan.failoverPriority(endpoints: endpoints, gateway: ["app": "gw"],
                                                              labels: ["version=v1"]))
        #expect(plan == .failover([[0], [1, 2]]), "the gateway's own labels play no part in key=value")
        let absent = try #require(LocalityPlan.failoverPriority(endpoints: [[:], ["zone": "b"]], gateway: ["app": "gw"],
                                                                labels: ["zone"]))
        #expect(absent == .failover([[0], [1]]), "neither side has it: equal, as Istio compares empty values")
    }

    @Test func failoverPriorityNeedsGatewayLabelsAndMoreThanOnePriority() {
        #expect(LocalityPlan.failoverPriority(endpoints: [["v": "1"], ["v": "2"]], gateway: [:], labels: ["v"]) == nil)
        #expect(LocalityPlan.failoverPriority(endpoints: [["v": "1"], ["v": "1"]], gateway: ["v": "1"], labels: ["v"]) == nil)
        #expect(LocalityPlan.topologyLabels(Locality("us-east/zone-a")) ==
                ["topology.kubernetes.io/region": "us-east", "topology.kubernetes.io/zone": "zone-a"])
    }

    @Test func loadStaysInAPriorityWhileEnoughOfItIsHealthyThenSpills() {
        #expect(LocalityPlan.priorityLoad(healthy: [4, 4], total: [4, 4]) == [100, 0])
        // 3 of 4 healthy: 1.4 × 75 % = 105 % → still all of it.
        #expect(LocalityPlan.priorityLoad(healthy: [3, 4], total: [4, 4]) == [100, 0])
        // 1 of 2 healthy: 70 %, the rest to the next priority.
        #expect(LocalityPlan.priorityLoad(healthy: [1, 2], total: [2, 2]) == [70, 30])
        #expect(LocalityPlan.priorityLoad(healthy: [0, 1], total: [1, 1]) == [0, 100])
        // 1 of 4 and 1 of 4: 35 % + 35 % = 70 % available, normalised to 100.
        #expect(LocalityPlan.priorityLoad(healthy: [1, 1], total: [4, 4]) == [50, 50])
        #expect(LocalityPlan.priorityLoad(healthy: [0, 0], total: [1, 1]) == [0, 0])
    }

    @Test func theEligibleEndpointsFollowTheLoad() throws {
        let plan = LocalityPlan.failover([[0], [1, 2]])
        #expect(plan.eligible(draw: 99, isEjected: { _ in false }) == [0])
        #expect(plan.eligible(draw: 5, isEjected: { $0 == 0 }) == [1, 2])
        #expect(plan.eligible(draw: 5, isEjected: { _ in true }) == nil)
        #expect(plan.eligible(draw: 99, isEjected: { _ in false }, avoiding: [0]) == [1, 2], "a retry to a remote locality")
        #expect(plan.eligible(draw: 99, isEjected: { _ in false }, avoiding: [0, 1]) == [0], "every priority tried: start over")
    }

    @Test func distributeSplitsAPatternsWeightOverTheLocalitiesItMatches() throws {
        let endpoints = ["us-east/zone-a", "us-east/zone-b", "us-east/zone-b", "eu-west/zone-a"].map(Locality.init)
        let plan = try #require(LocalityPlan.distribute(endpoints: endpoints, gateway: here,
                                                        rules: [("us-east/*", [("us-east/*", 90), ("eu-west/zone-a", 10)])]))
        // zone-a has 1 of the 3 us-east endpoints: ceil(90 / 3) = 30; zone-b ceil(180 / 3) = 60.
        #expect(plan == .distribute([.init(endpoints: [0], weight: 30), .init(endpoints: [1, 2], weight: 60),
                                     .init(endpoints: [3], weight: 10)]))
        #expect(LocalityPlan.distribute(endpoints: endpoints, gateway: here, rules: [("eu-west/*", [("eu-west/*", 100)])]) == nil,
                "no entry from the gateway's locality")
        // Ejections make a locality count less.
        #expect(plan.eligible(draw: 0, isEjected: { $0 == 0 }) == [1, 2])
    }

    @Test func patternsMatchPartByPart() {
        #expect(here.matches("us-east") && here.matches("us-east/*") && here.matches("*") && here.matches("us-east/zone-a/rack-1"))
        #expect(!here.matches("us-east/zone-b") && !here.matches("eu-west/*"))
    }
}
