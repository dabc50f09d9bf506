import Foundation
import GatehouseHTTP1
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

/// Runs a described request through `RequestDispatcher`, the code that serves real requests, with an
/// observer, and reports each step: normalized path, JWT outcome, every policy rule tried and why it did
/// or did not match, the decision, and the route or local reply.
public enum RequestExplainer {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func explain(_ request: ExplainRequest, snapshot: Snapshot, keys: JWKSCache) throws -> [String] {
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
                      snapshot: snapshot)
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
                       record: AccessLogRecord, dispatch: Dispatch, snapshot: Snapshot) -> [String] {
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
        lines += rateLimitLines(observer.rateLimits, limits: snapshot.rateLimits)
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

    /// Each RateLimitPolicy rule tried: why it did not apply, or its key and what it has left. The
    /// counters are this process's (a fresh `memory` store): the figures are those of a client's first
    /// request.
    static func rateLimitLines(_ observations: [RequestRateLimit.Observation], limits: RateLimits) -> [String] {
        guard !limits.isEmpty else { return ["ratelimit: no RateLimitPolicy applies"] }
        var lines = ["ratelimit: \(limits.rules.count) rule(s) of \(limits.policies.joined(separator: ", "))"]
        if observations.isEmpty { lines.append("  not reached: the request was answered before the rate limits") }
        // Passed-over rules are seen as the request meets them, the rest once the store has answered.
        for observation in observations.sorted(by: { $0.index < $1.index }) {
            let rule = observation.rule
            let head = "  \(rule.id) (\(rule.summary)\(rule.shadow ? ", shadow" : "")): "
            if let passedOver = observation.passedOver {
                lines.append(head + "not applied: " + passedOver)
            } else if let mismatch = observation.mismatch {
                lines.append(head + "no match, \(mismatch.description(in: limits.matcher.rules[observation.index]))")
            } else if let decision = observation.decision, let key = observation.key {
                let shownKey = key.isEmpty ? "every request" : "key \"\(key)\""
                lines.append(head + shownKey + (decision.allowed
                    ? ": \(decision.remaining) of \(decision.limit) left after this request"
                    : rule.shadow ? ": exhausted (shadow: logged, not refused)" : ": EXHAUSTED, refuses with \(rule.reply.status)"))
            } else {
                lines.append(head + "not applied: the request lacks " + rule.keySpelling.joined(separator: " or "))
            }
        }
        return lines
    }
}
