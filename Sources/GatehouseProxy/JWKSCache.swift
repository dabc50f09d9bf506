import Foundation
import GatehouseSecurity
import GatehouseTelemetry
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Keys fetched from `jwksUri`s, shared by every event loop. A request reads them under a lock only when
/// its token names a remote key set. Keys not loaded yet, or too old because refreshes keep failing,
/// are absent: tokens of that issuer get 401 until a fetch succeeds (fail closed).
public final class JWKSCache: JWKSProvider, Sendable {
    struct Entry {
        var keys: JWKSet?
        var fetchedAt: Date?
        var nextAttempt: Date = .distantPast
        var failures = 0
        var lastError: String?
        /// Since start-up, for `gatehouse_jwks_fetches_total`.
        var fetched = 0
        var failed = 0
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let generationCounter = Atomic<Int>(0)

    public var generation: Int { generationCounter.load(ordering: .relaxed) }
    /// Istio refreshes public keys every 20 minutes.
    let refreshInterval: TimeInterval
    /// Keys older than this are dropped: a key the issuer revoked must not be trusted forever because
    /// its JWKS endpoint went down.
    let maximumAge: TimeInterval

    public init(refreshInterval: TimeInterval = 20 * 60, maximumAge: TimeInterval = 40 * 60) {
        self.refreshInterval = refreshInterval
        self.maximumAge = maximumAge
    }

    public func keys(for uri: String) -> JWKSet? {
        entries.withLock { entries in
            guard let entry = entries[uri], let keys = entry.keys, let fetchedAt = entry.fetchedAt,
                  Date().timeIntervalSince(fetchedAt) < maximumAge else { return nil }
            return keys
        }
    }

    /// Fetches what is due among `sources` (uri → timeout): never fetched, failed (with backoff from
    /// 1 s to 60 s), or older than the refresh interval. Returns log lines for what changed.
    public func refresh(_ sources: [String: Double], fetch: (String, Double) async throws -> Data) async -> [String] {
        let now = Date()
        let due = entries.withLock { entries -> [(String, Double)] in
            sources.compactMap { uri, timeout in
                let entry = entries[uri] ?? Entry()
                entries[uri] = entry
                if now < entry.nextAttempt { return nil }
                if let fetchedAt = entry.fetchedAt, now.timeIntervalSince(fetchedAt) < refreshInterval { return nil }
                return (uri, timeout)
            }
        }
        var messages: [String] = []
        for (uri, timeout) in due {
            let outcome: Result<JWKSet, Error>
            do {
                outcome = .success(try JWKSet(data: try await fetch(uri, timeout)))
            } catch {
                outcome = .failure(error)
            }
            entries.withLock { entries in
                var entry = entries[uri] ?? Entry()
                switch outcome {
                case .success(let keys):
                    if entry.keys == nil || entry.failures > 0 {
                        messages.append("jwks \(uri): loaded \(keys.keys.count) key(s)")
                    }
                    entry.keys = keys
                    entry.fetchedAt = Date()
                    generationCounter.add(1, ordering: .relaxed)
                    entry.failures = 0
                    entry.fetched += 1
                    entry.lastError = nil
                    entry.nextAttempt = Date().addingTimeInterval(refreshInterval)
                case .failure(let error):
                    entry.failures += 1
                    entry.failed += 1
                    entry.lastError = "\(error)"
                    let backoff = min(60, pow(2, Double(min(entry.failures - 1, 6))))
                    entry.nextAttempt = Date().addingTimeInterval(backoff)
                    if entry.failures == 1 || entry.failures % 10 == 0 {
                        messages.append("jwks \(uri): fetch failed (\(entry.failures)x): \(error); retrying in \(Int(backoff)) s")
                    }
                }
                entries[uri] = entry
            }
        }
        return messages
    }
}

extension JWKSCache {
    /// `gatehouse_jwks_fetches_total{source,result}`: every key source the gateway has fetched (a
    /// `jwksUri`, or `openid-discovery:ISSUER`), with its successes and failures since start-up. A failure
    /// keeps the last good keys (until they are 40 minutes old), so this is where a broken identity
    /// provider shows before tokens start failing.
    public func prometheusText() -> String {
        let counts = entries.withLock { entries in
            entries.map { (source: $0.key, fetched: $0.value.fetched, failed: $0.value.failed) }.sorted { $0.source < $1.source }
        }
        var out = """
        # HELP gatehouse_jwks_fetches_total Fetches of RequestAuthentication keys (a jwksUri, or OpenID discovery from an issuer), by source and result.
        # TYPE gatehouse_jwks_fetches_total counter

        """
        for count in counts {
            let source = GatewayMetrics.labelValue(count.source)
            out += "gatehouse_jwks_fetches_total{source=\"\(source)\",result=\"success\"} \(count.fetched)\n"
            out += "gatehouse_jwks_fetches_total{source=\"\(source)\",result=\"failure\"} \(count.failed)\n"
        }
        return out
    }
}

/// Reads a JWKS: `file://` from disk, `http(s)://` with one HTTP/1.0 GET (so the body is never chunked).
public enum JWKSFetcher {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static let maximumBytes = 1 << 20

    /// `extraRoots`: a PEM bundle trusted besides the system's CAs (Bootstrap `jwksRootCerts`).
    public static func fetch(_ uri: String, timeout: Double, group: EventLoopGroup, extraRoots: String? = nil) async throws -> Data {
        if uri.hasPrefix(JWTKeySource.discoveryPrefix) {
            return try await discover(issuer: String(uri.dropFirst(JWTKeySource.discoveryPrefix.count)), timeout: timeout,
                                      group: group, extraRoots: extraRoots)
        }
        guard let url = URL(string: uri), let scheme = url.scheme?.lowercased() else { throw Failure(description: "invalid URI") }
        if scheme == "file" {
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw Failure(description: "cannot read \(url.path)")
            }
            return data
        }
        guard scheme == "http" || scheme == "https", let host = url.host else {
            throw Failure(description: "unsupported URI \(uri)")
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let path = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?\($0)" } ?? "")
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let collector = ResponseCollector(limit: maximumBytes)
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let extraRoots { configuration.additionalTrustRoots = [.file(extraRoots)] }
        let tls: NIOSSLContext? = scheme == "https" ? try NIOSSLContext(configuration: configuration) : nil
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        let request = "GET \(path) HTTP/1.0\r\nHost: \(hostHeader)\r\nAccept: application/json\r\nUser-Agent: gatehouse\r\n\r\n"
        channel.writeAndFlush(channel.allocator.buffer(string: request), promise: nil)
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            collector.fail(Failure(description: "timed out after \(timeout) s"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        let bytes = try await collector.done.futureResult.get()
        return try parse(bytes)
    }

    /// OpenID Connect Discovery 1.0: `ISSUER/.well-known/openid-configuration` names the `jwks_uri`, and
    /// that is fetched as a `jwksUri` would be. The document's `issuer` must be the one asked for (§4.3),
    /// so a document served for another issuer cannot hand over its keys.
    static func discover(issuer: String, timeout: Double, group: EventLoopGroup, extraRoots: String?) async throws -> Data {
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        guard base.lowercased().hasPrefix("https://") || base.lowercased().hasPrefix("http://") else {
            throw Failure(description: "OpenID discovery needs an http(s) issuer, got \"\(issuer)\"")
        }
        let document = try await fetch(base + "/.well-known/openid-configuration", timeout: timeout, group: group,
                                       extraRoots: extraRoots)
        guard let json = try? JSONSerialization.jsonObject(with: document) as? [String: Any] else {
            throw Failure(description: "openid-configuration of \(issuer) is not a JSON object")
        }
        guard let published = json["issuer"] as? String, published == issuer else {
            throw Failure(description: "openid-configuration of \(issuer) names issuer \"\((json["issuer"] as? String) ?? "")\"")
        }
        guard let jwksURI = json["jwks_uri"] as? String,
              jwksURI.lowercased().hasPrefix("https://") || jwksURI.lowercased().hasPrefix("http://") else {
            throw Failure(description: "openid-configuration of \(issuer) has no http(s) jwks_uri")
        }
        return try await fetch(jwksURI, timeout: timeout, group: group, extraRoots: extraRoots)
    }

    /// Status line, headers, body; only a 200 is a JWKS.
    static func parse(_ bytes: [UInt8]) throws -> Data {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.firstRange(of: separator) else { throw Failure(description: "incomplete response") }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "malformed status line") }
        guard status == 200 else { throw Failure(description: "HTTP \(status)") }
        return Data(bytes[end.upperBound...])
    }

    /// `@unchecked Sendable`: its state is touched only on the fetch connection's event loop (the handler
    /// callbacks, and `done` read back there once the connection is set up).
    final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let limit: Int
        var bytes: [UInt8] = []
        var done: EventLoopPromise<[UInt8]>!
        var finished = false

        init(limit: Int) { self.limit = limit }

        func handlerAdded(context: ChannelHandlerContext) {
            done = context.eventLoop.makePromise()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
            if bytes.count > limit {
                fail(Failure(description: "response larger than \(limit) bytes"))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            guard !finished else { return }
            finished = true
            done.succeed(bytes)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            // A server that closes without close_notify still sent a whole HTTP/1.0 body.
            if let tlsError = error as? NIOSSLError, case .uncleanShutdown = tlsError { return }
            fail(error)
            context.close(promise: nil)
        }

        func fail(_ error: Error) {
            guard !finished else { return }
            finished = true
            done.fail(error)
        }
    }
}
