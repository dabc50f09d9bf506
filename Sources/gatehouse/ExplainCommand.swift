import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseProxy
import GatehouseRateLimit
import GatehouseSnapshot
import GatehouseStateStore
import NIOPosix

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show how the gateway would handle one request: normalized path, JWT, each policy rule, decision and route.",
        discussion: """
        The request runs through the same dispatcher that serves traffic (nothing is sent anywhere).
        Example:
          gatehouse explain --config conf -X POST -H 'x-role: admin' --source-ip 203.0.113.7 --jwt "$TOKEN" https://api.example.com/admin
        Rate-limit figures are read where the counters are: in Redis for the redis store, from a running
        gateway with --admin for the memory and sqlite stores (else the sqlite file, written behind each
        second; a memory store without --admin shows a first request's figures).
        """)

    @OptionGroup var config: ConfigPaths

    @Argument(help: "The request URL, e.g. http://api.example.com/v1/items?x=1 (https: a TLS listener).")
    var url: String

    @Option(name: [.customShort("X"), .long], help: "The request method.")
    var method = "GET"

    @Option(name: [.customShort("H"), .customLong("header")], help: ArgumentHelp("A request header (repeatable).", valueName: "name: value"))
    var headers: [String] = []

    @Option(help: "The client's IP address (the direct peer).")
    var sourceIP = "127.0.0.1"

    @Option(help: "The client certificate identity, e.g. spiffe://cluster.local/ns/apps/sa/web.")
    var principal: String?

    @Option(help: "The TLS server name (default: the URL's host for https).")
    var sni: String?

    @Option(help: "A JWT, sent as Authorization: Bearer.")
    var jwt: String?

    @Option(help: "The listener port (default: the URL's port, else the first matching listener).")
    var port: Int?

    @Option(help: ArgumentHelp("A running gateway's admin server: its memory or sqlite store's counters as they are "
        + "now give the rate-limit figures (without it: the sqlite file's, or a first request's).", valueName: "host:port"))
    var admin: String?

    func run() async throws {
        let loaded = ConfigPipeline.load(paths: config.resolved)
        guard !loaded.hasErrors else {
            for diagnostic in loaded.diagnostics.errors.sorted(by: DiagnosticOrder.precedes) { print(diagnostic) }
            throw ExitCode(1)
        }
        let snapshot = try SnapshotCompiler.compile(loaded, version: 0)
        var request = ExplainRequest(url: url)
        request.method = method
        request.sourceIP = sourceIP
        request.peerPrincipal = principal
        request.serverName = sni
        request.listenerPort = port
        for header in headers {
            guard let colon = header.firstIndex(of: ":") else {
                throw ValidationError("header \"\(header)\" is not of the form \"name: value\"")
            }
            request.headers.append((String(header[..<colon]), header[header.index(after: colon)...]
                .trimmingCharacters(in: .whitespaces)))
        }
        if let jwt { request.headers.append(("authorization", "Bearer \(jwt)")) }
        // Remote JWKS are fetched once, as the gateway does before it listens.
        let keys = JWKSCache()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sources = snapshot.authentication.remoteKeySources
        if !sources.isEmpty {
            let roots = snapshot.settings.jwksRootCertificates
            for message in await keys.refresh(sources, fetch: { uri, timeout in
                try await JWKSFetcher.fetch(uri, timeout: timeout, group: group, extraRoots: roots)
            }) { print("note:      \(message)") }
        }
        try? await group.shutdownGracefully()
        do {
            let adminClient = try admin.map { address in
                guard let client = AdminClient(address, timeout: 3) else {
                    throw ValidationError("--admin must be HOST:PORT, got \(address)")
                }
                return client
            }
            let live: RateLimitLiveCounters? = switch (snapshot.settings.rateLimitStore, adminClient) {
            case (.redis(let settings), _): try RedisLiveCounters(settings)
            case (_, let client?): AdminLiveCounters(client: client)
            case (.memory, nil): nil
            case (.sqlite(let directory), nil): SQLiteLiveCounters(directory: directory)
            }
            for line in try RequestExplainer.explain(request, snapshot: snapshot, keys: keys, live: live) { print(line) }
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The `sqlite` store's quota counts as last written behind (at most a second old), read from its file.
/// Token buckets are not kept there.
struct SQLiteLiveCounters: RateLimitLiveCounters {
    let directory: String
    var name: String { "sqlite \(directory)" }

    func decision(_ identity: CounterIdentity, key: String, now: Int64) throws -> RateLimitDecision? {
        guard case .quota = identity.algorithm else { return nil }
        let state = try QuotaDatabase.savedState(directory: directory, rule: identity.persistentName, key: key)
        return identity.algorithm.decision(storedState: state ?? RateLimitAlgorithm.initialState, now: now)
    }
}

/// A running gateway's counters (memory or sqlite store), read from its admin server's
/// `/ratelimit_counters`: nothing is taken.
struct AdminLiveCounters: RateLimitLiveCounters {
    let client: AdminClient
    var name: String { "gateway \(client.host):\(client.port)" }

    func decision(_ identity: CounterIdentity, key: String, now: Int64) throws -> RateLimitDecision? {
        let path = "/ratelimit_counters?rule=\(PercentCoding.encoded(identity.persistentName))&key=\(PercentCoding.encoded(key))"
        let answer = try client.get(path).get()
        let text = String(decoding: answer.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answer.status == 200 else { throw AdminClient.Problem(message: "\(answer.status) \(text)") }
        guard let document = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
              document.keys.contains("state") else {
            throw AdminClient.Problem(message: "an unreadable answer: \(text)")
        }
        // null: the gateway has not counted this key (or forgot it once it was back to its full allowance).
        let state = (document["state"] as? NSNumber)?.int64Value ?? RateLimitAlgorithm.initialState
        return identity.algorithm.decision(storedState: state, now: now)
    }
}
