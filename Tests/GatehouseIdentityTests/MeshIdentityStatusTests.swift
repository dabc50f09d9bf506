import Foundation
import Testing
@testable import GatehouseIdentity

@Suite struct MeshIdentityStatusTests {
    let born = Date(timeIntervalSince1970: 1_800_000_000)

    func status(lifetime: TimeInterval) -> MeshIdentityStatus {
        MeshIdentityStatus(spiffeID: "spiffe://Cluster.Local/ns/istio-system/sa/gw", notValidBefore: born,
                           notValidAfter: born + lifetime)
    }

    @Test func warnsOnceAQuarterOfTheLifetimeIsLeftAndSaysWhenItLapsed() {
        let day = status(lifetime: 86_400)
        #expect(day.expiryWarning(now: born + 43_200) == nil)
        #expect(day.expiryWarning(now: born + 64_000) == nil)
        #expect(day.expiryWarning(now: born + 65_000)?.contains("expires in 21400 s") == true)
        #expect(day.expiryWarning(now: born + 86_401)?.contains("expired at") == true)
        #expect(day.trustDomain == "cluster.local")
    }
}
