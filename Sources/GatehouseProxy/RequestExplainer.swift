import Foundation
import GatehouseHTTP1
import GatehouseRateLimit
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOPosix

/// A request described on the command line, for `gatehouse explain`.
public struct ExplainRequest {
    public var method = "GET"
    /// `http://host[:port]/path?query` (https marks a TLS listener).
    public var url: String
    public var headers: [(String, String)] = []
    public var sourceIP = "127.0.0.1"
    /// The client certificate identity, e.g. `spiffe://cluster.local/ns/apps/sa/web`.
    public var peerPrincipal: String?
    /// The TLS SNI (default: the URL's host, for https).
    public var serverName: String?
    /// The listener port (default: the URL's port, else the only listener or the first HTTP one).
    public var listenerPort: Int?

    public init(url: String) { self.url = url }
}

/// Where `explain` reads a rate-limit counter as it is now, shared with the running gateways (the
/// `redis` store, or the `sqlite` store's file), instead of this process's fresh counters.
public protocol RateLimitLiveCounters {
    /// The store, for the report.
    var name: String { get }
    /// What `identity`'s rule would decide for `key` at `now`, from the stored state, taking nothing;
    /// nil when the store does not keep such counters (the sqlite store keeps quotas only).
    func decision(_ identity: CounterIdentity, key: String, now: Int64) throws -> RateLimitDecision?
}

/// Runs a described request through `RequestDispatcher`, the code that serves real requests, with an
/// observer, and reports each step: normalized path, JWT outcome, every policy rule tried and why it did
/// or did not match, the decision, and the route or local reply.
public enum RequestExplainer {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func explain(_ request: ExplainRequest, snapshot: Snapshot, keys: JWKSCache,
                               live: RateLimitLiveCounters? = nil) throws -> [String] {
        guard let url = URLComponents(string: request.url), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty else {
            throw Failure(description: "expected an absolute http(s) URL, got \"\(request.url)\"")
        }
        let authority = url.port.map { "\(host):\($0)" } ?? host
        let target = (url.percentEncodedPath.isEmpty ? "/" : url.percentEncodedPath)
            + (url.percentEncodedQuery.map { "?\($0)" } ?? "")
        let port = try listenerPort(request, url: url, snapshot: snapshot)
        var headers = HTTPHeaderBlock()
        if !request.headers.contains(where: { $0.0.lowercased() == "host" }) { headers.add("host", authority) }
        for (name, value) in request.headers { headers.add(name, value) }
        let head = RequestHead(method: request.method, target: target, version: .http1_1, headers: headers,
                                    framing: .none, connection: .init(), hostCount: 1, expectsContinue: false)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = LoopContext(eventLoop: group.next())
        let tls: DownstreamTLS? = scheme == "https" || request.serverName != nil || request.peerPrincipal != nil
            ? DownstreamTLS(described: request.serverName ?? (scheme == "https" ? host.lowercased() : nil),
                            peerPrincipal: request.peerPrincipal, on: loop.eventLoop)
            : nil
        let origin = DownstreamOrigin(listenerPort: port, tls: tls, clientIP: request.sourceIP, localIP: nil)
        let observer = DispatchObserver()
        var record = AccessLogRecord()
        let dispatch = RequestDispatcher.dispatch(head, host: authority, requestID: "explain", origin: origin,
                                                  snapshot: snapshot, loop: loop, allocator: ByteBufferAllocator(),
                                                  keys: keys, counters: nil, record: &record, observer: observer)
        return report(request, target: target, port: port, observer: observer, record: record, dispatch: dispatch,
                      snapshot: snapshot, live: live)
    }

    static func listenerPort(_ request: ExplainRequest, url: URLComponents, snapshot: Snapshot) throws -> Int {
        if let port = request.listenerPort ?? url.port {
            guard snapshot.listener(port: port) != nil else {
                throw Failure(description: "no listener on port \(port); listeners: "
                    + snapshot.listeners.map { String($0.port) }.joined(separator: ", "))
            }
            return port
        }
        let wantTLS = url.scheme?.lowercased() == "https"
        guard let listener = snapshot.listeners.first(where: { ($0.tls != nil) == wantTLS && $0.stream == nil })
            ?? snapshot.listeners.first else { throw Failure(description: "the configuration has no listener") }
        return listener.port
    }

    static func report(_ request: ExplainRequest, target: String, port: Int, observer: DispatchObserver,
                       record: AccessLogRecord, dispatch: Dispatch, snapshot: Snapshot,
                       live: RateLimitLiveCounters? = nil) -> [String] {
        var lines = ["request:   \(request.method) \(request.url) on listener \(port) from \(request.sourceIP)"
            + (request.peerPrincipal.map { " as \($0)" } ?? "")]
        if let path = observer.normalizedPath {
            let mode = snapshot.settings.pathNormalization.rawValue
            lines.append("path:      \(path)" + (path == target.prefix { $0 != "?" && $0 != "#" } ? "" : "  (\(mode) normalization)"))
        }
        switch observer.authentication {
        case nil:
            lines.append("jwt:       no RequestAuthentication applies")
        case .anonymous?:
            lines.append("jwt:       no token: the request goes on without a request principal")
        case .authenticated(let identity, _, let rule)?:
            lines.append("jwt:       verified by \(rule): request principal \(identity.principal)")
        case .failed(let failure)?:
            lines.append("jwt:       refused: \(failure.rawValue)")
        }
        let engine = snapshot.listener(port: port)?.authorization ?? .empty
        if engine.isEmpty {
            lines.append("policies:  none apply on this listener")
        } else if observer.decision != nil {
            lines.append("policies:  \(engine.policies.count) apply on this listener"
                + (engine.policies.count <= 10 ? ": " + engine.policies.joined(separator: ", ") : ""))
            for (rule, mismatch) in observer.rules {
                lines.append("  \(rule.label.action.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)) "
                    + "\(rule.label.logName): " + (mismatch.map { "no match, \($0.description(in: rule))" } ?? "MATCHED"))
                if let authority = record.authority, let note = rule.hostPortNote(host: authority, matched: mismatch == nil) {
                    lines.append("        note: \(note)")
                }
            }
            let skipped = engine.ruleCount - observer.rules.count
            if skipped > 0 { lines.append("  (\(skipped) rule(s) for other hosts skipped by the host index)") }
        }
        if let decision = observer.decision {
            switch decision.reason {
            case .noAllowPolicy: lines.append("decision:  allowed (no DENY matched, no ALLOW policy applies)")
            case .allowedByRule: lines.append("decision:  allowed by \(decision.rule?.logName ?? "")")
            case .deniedByRule: lines.append("decision:  denied by \(decision.rule?.logName ?? "")")
            case .noAllowMatched: lines.append("decision:  denied: ALLOW policies apply and none matched (default-deny)")
            case .allowNothing: lines.append("decision:  denied: an ALLOW policy without rules allows nothing (allow-nothing)")
            }
        }
        let (limitLines, liveRefusal) = rateLimitLines(observer.rateLimits, limits: snapshot.rateLimits, live: live)
        lines += limitLines
        if let liveRefusal {
            // The stored counters refuse what this process's fresh ones let through.
            if let route = record.routeName { lines.append("route:     \(route)") }
            lines.append("result:    \(liveRefusal.status) \"\(String(decoding: liveRefusal.body, as: UTF8.self))\" "
                + "(\(liveRefusal.details), by the \(live?.name ?? "") counters now)")
            return lines
        }
        switch dispatch {
        case .reply(let reply, _):
            if let route = record.routeName { lines.append("route:     \(route)") }
            let body = String(decoding: reply.body, as: UTF8.self)
            lines.append("result:    \(reply.status) \(body.isEmpty ? "" : "\"\(body)\" ")(\(reply.details))")
        case .forward(let forwarding):
            lines.append("route:     \(record.routeName ?? "-")")
            lines.append("result:    forwarded to \(forwarding.cluster.name)")
        case .awaitRateLimit:
            // Explaining never asks a store: the observer keeps the dispatcher on this process's counters.
            lines.append("result:    waits for the rate-limit store")
        }
        return lines
    }

    /// Each RateLimitPolicy rule tried: why it did not apply, or its key and what it has left. Without
    /// `live` the counters are this process's (a fresh `memory` store): the figures are those of a
    /// client's first request. With `live`, each rule's figures are the stored counters' (read, not taken
    /// from), and the refusal they would make is returned.
    static func rateLimitLines(_ observations: [RequestRateLimit.Observation], limits: RateLimits,
                               live: RateLimitLiveCounters? = nil) -> (lines: [String], liveRefusal: LocalReply?) {
        guard !limits.isEmpty else { return (["ratelimit: no RateLimitPolicy applies"], nil) }
        var lines = ["ratelimit: \(limits.rules.count) rule(s) of \(limits.policies.joined(separator: ", "))"
            + (live.map { "; figures from the \($0.name) counters as they are now" }
                ?? "; figures for a first request (this process's counters)")]
        var liveRefusal: LocalReply?
        let now = RequestRateLimit.now()
        if observations.isEmpty { lines.append("  not reached: the request was answered before the rate limits") }
        // Passed-over rules are seen as the request meets them, the rest once the store has answered.
        for observation in observations.sorted(by: { $0.index < $1.index }) {
            let rule = observation.rule
            let head = "  \(rule.id) (\(rule.summary)\(rule.shadow ? ", shadow" : "")): "
            if let passedOver = observation.passedOver {
                lines.append(head + "not applied: " + passedOver)
            } else if let mismatch = observation.mismatch {
                lines.append(head + "no match, \(mismatch.description(in: limits.matcher.rules[observation.index]))")
            } else if var decision = observation.decision, let key = observation.key {
                let shownKey = key.isEmpty ? "every request" : "key \"\(key)\""
                var note = ""
                if let live, liveRefusal == nil {
                    do {
                        if let stored = try live.decision(limits.identities[observation.index], key: key, now: now) {
                            decision = stored
                        } else {
                            note = " (not kept in the \(live.name) store: a first request's figures)"
                        }
                    } catch {
                        note = " (the \(live.name) counters cannot be read: \(error); a first request's figures)"
                    }
                    if !decision.allowed, !rule.shadow { liveRefusal = .rateLimited(decision, reply: rule.reply) }
                }
                lines.append(head + shownKey + (decision.allowed
                    ? ": \(decision.remaining) of \(decision.limit) left after this request"
                    : rule.shadow ? ": exhausted (shadow: logged, not refused)" : ": EXHAUSTED, refuses with \(rule.reply.status)")
                    + note)
            } else {
                lines.append(head + "not applied: the request lacks " + rule.keySpelling.joined(separator: " or "))
            }
        }
        return (lines, liveRefusal)
    }
}

/// The `redis` store's counters, read for `explain` with a GET per rule (nothing is taken).
public final class RedisLiveCounters: RateLimitLiveCounters {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let connection: RedisConnection
    private let settings: RedisStoreSettings
    public var name: String { "redis \(settings.url)" }

    public init(_ settings: RedisStoreSettings) throws {
        self.settings = settings
        connection = RedisConnection(eventLoop: group.next(), url: settings.url, timeout: .seconds(2),
                                     tls: try settings.makeTLSContext(),
                                     health: RedisHealth(failOpen: settings.failOpen, announce: { _ in }))
    }

    deinit { try? group.syncShutdownGracefully() }

    private struct ConnectionBox: @unchecked Sendable {
        let connection: RedisConnection
    }

    public func decision(_ identity: CounterIdentity, key: String, now: Int64) throws -> RateLimitDecision? {
        let take = RedisTake(rule: RedisRule(identity), key: key, enforced: true)
        let redisKey = RedisRateLimitScript.key(take, now: now)
        // Handed to its loop and used only there (NIOLoopBound cannot be made off the loop).
        let box = ConnectionBox(connection: connection)
        let reply = try connection.eventLoop.flatSubmit { () -> EventLoopFuture<RESPValue> in
            let promise = box.connection.eventLoop.makePromise(of: RESPValue.self)
            box.connection.send(["GET", redisKey]) { promise.completeWith($0.mapError { $0 as Error }) }
            return promise.futureResult
        }.wait()
        let state: Int64
        switch reply {
        case .bulkString(nil): state = 0
        case .bulkString(let bytes?): state = Int64(String(decoding: bytes, as: UTF8.self)) ?? 0
        case .error(let message): throw RedisRateLimitScript.ReplyError(description: message)
        default: throw RedisRateLimitScript.ReplyError(description: "unexpected reply \(reply)")
        }
        return RedisRateLimitScript.decision(state: state, for: take, now: now)
    }
}
