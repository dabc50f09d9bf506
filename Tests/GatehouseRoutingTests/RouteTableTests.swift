import GatehouseRouting
import Testing

@Suite struct RouteTableTests {
    @Test func firstMatchingRouteWinsAndEntriesAreORed() throws {
        let host = VirtualHost(domain: "*", routes: [
            direct("a", [RouteMatch(uri: .exact("/a")), RouteMatch(uri: .exact("/alias"))]),
            direct("prefix", [RouteMatch(uri: .prefix("/a"))]),
            direct("all", []),
        ])
        #expect(chosen(host, input("/a")) == "a")
        #expect(chosen(host, input("/alias")) == "a")
        #expect(chosen(host, input("/ab")) == "prefix")
        #expect(chosen(host, input("/zzz")) == "all")
    }

    @Test func noMatchingRouteSelectsNothing() throws {
        let host = VirtualHost(domain: "*", routes: [direct("a", [RouteMatch(uri: .exact("/a"))])])
        #expect(try host.select(input("/b")) == nil)
    }

    @Test func exactHostsBeatWildcardsAndLongerWildcardsWin() throws {
        let table = RouteTable(virtualHosts: [
            VirtualHost(domain: "*", routes: [direct("any", [])]),
            VirtualHost(domain: "*.example.com", routes: [direct("wild", [])]),
            VirtualHost(domain: "*.api.example.com", routes: [direct("wild-api", [])]),
            VirtualHost(domain: "www.example.com", routes: [direct("www", [])]),
        ])
        func name(_ authority: String) -> String? { try! table.select(input("/", authority: authority))?.1?.route.name }
        #expect(name("www.example.com") == "www")
        #expect(name("WWW.Example.COM:8080") == "www", "case and port are ignored for the host lookup")
        #expect(name("www.example.com.") == "www", "a trailing dot is the same host")
        #expect(name("shop.example.com") == "wild")
        #expect(name("v1.api.example.com") == "wild-api")
        #expect(name("example.com") == "any", "*.example.com does not match example.com")
        #expect(name("other.org") == "any")
    }

    @Test func withoutACatchAllHostUnknownHostsFindNothing() throws {
        let table = RouteTable(virtualHosts: [VirtualHost(domain: "a.com", routes: [direct("a", [])])])
        #expect(try table.select(input("/", authority: "b.com")) == nil)
        #expect(try table.select(input("/", authority: "[::1]:8080")) == nil)
    }

    @Test func authoritySplitting() throws {
        #expect(Authority.split("a.com:8080") == ("a.com", 8080))
        #expect(Authority.split("a.com") == ("a.com", nil))
        #expect(Authority.split("[::1]:80") == ("::1", 80))
        #expect(Authority.split("[::1]") == ("::1", nil))
    }
}
