import GatehouseRouting
import Testing
@testable import GatehouseProxy

/// A mirror's copy names Envoy's shadow host: the request's host (after any authority rewrite) with
/// `-shadow` before the port; the route's path rewrite still applies.
@Suite struct ShadowHostTests {
    @Test func theShadowSuffixGoesBeforeThePort() {
        #expect(RequestDispatcher.shadowRewrite(nil, authority: "api.example.com").authority == "api.example.com-shadow")
        #expect(RequestDispatcher.shadowRewrite(nil, authority: "api.example.com:8080").authority == "api.example.com-shadow:8080")
    }

    @Test func anAuthorityRewriteIsShadowedAndThePathRewriteKept() {
        let shadow = RequestDispatcher.shadowRewrite(Rewrite(uri: "/v2", authority: "internal.svc"), authority: "api.example.com")
        #expect(shadow.authority == "internal.svc-shadow" && shadow.uri == "/v2")
    }
}
