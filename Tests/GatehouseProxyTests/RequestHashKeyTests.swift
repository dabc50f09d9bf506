import GatehouseRouting
import GatehouseUpstream
import Testing
@testable import GatehouseProxy

/// `consistentHash.httpCookie`: which cookie value a request is hashed on, and the cookie the gateway
/// generates (and sets) for a request that has none.
@Suite struct RequestHashKeyTests {
    @Test func theNamedCookieIsFoundAmongOthersAndItsQuotesGo() {
        #expect(RequestHashKey.cookieValue("affinity", in: ["a=1; affinity=\"abc\"; b=2"]) == "abc")
        #expect(RequestHashKey.cookieValue("affinity", in: ["a=1", "affinity=xyz "]) == "xyz")
        #expect(RequestHashKey.cookieValue("affinity", in: ["xaffinity=1; affinity2=2"]) == nil, "names match whole")
        #expect(RequestHashKey.cookieValue("affinity", in: ["affinity=first; affinity=second"]) == "first")
        #expect(RequestHashKey.cookieValue("affinity", in: []) == nil)
    }

    @Test func aGeneratedCookieIsWhatALaterRequestPresentingItHashesTo() {
        let cookie = HashCookie(name: "affinity", path: "/", ttlSeconds: 60, attributes: [("SameSite", "Strict")])
        let generated = RequestHashKey.generatedCookie(cookie, remoteAddress: "10.0.0.1:5555", localAddress: "10.0.0.2:443")
        #expect(generated.setCookie.hasPrefix("affinity=\""))
        #expect(generated.setCookie.hasSuffix("\"; Max-Age=60; Path=/; SameSite=Strict; HttpOnly"))
        let value = RequestHashKey.cookieValue("affinity", in: [generated.setCookie])
        let input = RouteInput(method: "GET", path: "/", query: nil, scheme: "http", authority: "a", port: 80,
                               headers: HeaderList([("cookie", "theme=dark; affinity=\"\(value ?? "")\"")]))
        let presented = RequestHashKey.compute(.cookie(cookie), input: input, clientIP: nil)
        #expect(presented == generated.key)
        let again = RequestHashKey.generatedCookie(cookie, remoteAddress: "10.0.0.1:5555", localAddress: "10.0.0.2:443")
        #expect(again.key == generated.key, "streams of one connection get the same cookie")
        let other = RequestHashKey.generatedCookie(cookie, remoteAddress: "10.0.0.9:5555", localAddress: "10.0.0.2:443")
        #expect(other.key != generated.key)
    }

    @Test func aZeroTTLIsASessionCookie() {
        let cookie = HashCookie(name: "s", path: nil, ttlSeconds: 0, attributes: [])
        #expect(cookie.setCookie(value: "v") == "s=\"v\"; HttpOnly")
    }
}
