import Testing
@testable import GatehouseConfig

/// The Bootstrap's `rateLimitStore.url`: the forms redis-cli reads, and a clear refusal of the rest.
@Suite struct RedisURLTests {
    @Test func aPlainURLDefaultsThePortAndDatabase() throws {
        let url = try RedisURL.parse("redis://127.0.0.1")
        #expect(url == RedisURL(host: "127.0.0.1"))
        #expect(url.description == "redis://127.0.0.1:6379/0")
    }

    @Test func credentialsPortDatabaseAndTLSAreRead() throws {
        let url = try RedisURL.parse("rediss://gatehouse:s%40cr%3At@redis.internal:6380/3")
        #expect(url.tls)
        #expect(url.host == "redis.internal")
        #expect(url.port == 6380)
        #expect(url.username == "gatehouse")
        #expect(url.password == "s@cr:t")
        #expect(url.database == 3)
        // The password never reaches a log line.
        #expect(url.description == "rediss://gatehouse:***@redis.internal:6380/3")
    }

    @Test func aPasswordAloneAuthenticatesAsTheDefaultUser() throws {
        let url = try RedisURL.parse("redis://:secret@[::1]:7000/")
        #expect(url.username == nil)
        #expect(url.password == "secret")
        #expect(url.host == "::1")
        #expect(url.port == 7000)
        #expect(url.database == 0)
    }

    @Test(arguments: [
        ("http://127.0.0.1:6379", "the scheme must be redis or rediss"),
        ("redis://127.0.0.1:0", "the port must be 1-65535"),
        ("redis://127.0.0.1:6379/x", "the path must be a database number"),
        ("redis://127.0.0.1:6379?timeout=1", "query strings and fragments are not read"),
        ("redis://", "no host"),
        ("redis://secret@host", "credentials must be USER:PASSWORD or :PASSWORD"),
        ("redis://[::1", "an IPv6 address without its closing ]"),
        ("redis://:pa%zzword@host", "a malformed %-escape in the credentials"),
    ])
    func malformedURLsAreRefusedSayingWhy(text: String, why: String) {
        #expect(throws: RedisURL.ParseError.self) { try RedisURL.parse(text) }
        do {
            _ = try RedisURL.parse(text)
        } catch {
            #expect(error.description.hasSuffix(why))
        }
    }

    @Test func aRefusedURLDoesNotPrintItsPassword() {
        do {
            _ = try RedisURL.parse("redis://:hunter2@host:99999")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.description.contains("redis://:***@host:99999"))
        }
    }
}
