@testable import GatehouseProxy
@testable import GatehouseSnapshot
import Testing

final class RegistryTestState: Sendable {
    let label: String
    init(_ label: String) { self.label = label }
}

private func cluster(index: Int = 0, endpoints: [String] = ["10.0.0.1", "10.0.0.2"],
                     name: String = "outbound|80||backend.test") -> Cluster {
    var cluster = Cluster(name: name, host: "backend.test", port: 80, subset: nil,
                          discovery: .staticAddresses,
                          endpoints: endpoints.map { Endpoint(address: $0, port: 80, labels: [:]) },
                          connectTimeoutNanoseconds: 1, maxRequestsPerConnection: 0, idleTimeoutNanoseconds: 1)
    cluster.index = index
    return cluster
}

@Suite struct ClusterStateRegistryTests {
    let registry = ClusterStateRegistry<RegistryTestState>()

    func state(_ cluster: Cluster, version: Int, print: String, label: String) -> RegistryTestState? {
        registry.state(for: cluster, version: version, fingerprint: { print }, make: { RegistryTestState(label) })
    }

    @Test func oneStatePerClusterAndVersionMadeOnce() {
        let first = state(cluster(), version: 1, print: "a", label: "made")
        let again = state(cluster(), version: 1, print: "a", label: "made twice")
        #expect(first === again && first?.label == "made")
    }

    @Test func aReloadKeepsTheStateOfAnUnchangedClusterOnly() {
        let original = state(cluster(), version: 1, print: "a", label: "v1")
        #expect(state(cluster(index: 3), version: 2, print: "a", label: "v2") === original, "same name and fingerprint, another index")
        #expect(state(cluster(index: 3), version: 3, print: "b", label: "v3")?.label == "v3", "new endpoints or policy: new state")
    }

    @Test func aRequestOnAnOlderSnapshotGetsTheStateOnlyIfItWasMadeForTheSameCluster() {
        _ = state(cluster(), version: 1, print: "a", label: "v1")
        _ = state(cluster(endpoints: ["10.0.0.9"]), version: 2, print: "b", label: "v2")
        // Its endpoint indices would not match the new state's: no state rather than the wrong one.
        #expect(state(cluster(), version: 1, print: "a", label: "late") == nil)
        #expect(state(cluster(endpoints: ["10.0.0.9"]), version: 1, print: "b", label: "late")?.label == "v2")
    }

    @Test func theAdminViewSeesThePreviousVersionsStateUntilTheNewOneIsAskedFor() {
        let name = cluster().name
        _ = state(cluster(), version: 1, print: "a", label: "v1")
        _ = state(cluster(index: 1, name: "outbound|80||other.test"), version: 2, print: "m", label: "other")
        #expect(registry.current(named: name, fingerprint: { "a" })?.label == "v1")
        #expect(registry.current(named: name, fingerprint: { "b" }) == nil, "made for other endpoints or policy")
        _ = state(cluster(), version: 2, print: "a", label: "v2")
        #expect(registry.current(named: name, fingerprint: { "a" })?.label == "v1", "kept across the reload")
    }
}
