import Crypto
import GatehouseConfig
import GatehouseRateLimit
import GatehouseSnapshot
import NIOCore
import NIOSSL
import Synchronization

/// What the `redis` store says of a request's rules.
enum RedisTakeOutcome {
    /// Each rule's decision in order; nil after the rule that refused (not taken).
    case decided([RateLimitDecision?])
    /// Redis could not answer in time: the Bootstrap's `failureMode` decides the request.
    case unavailable(String)
}

/// One event loop's `redis` rate-limit store: every request's takes in one `EVALSHA` of
/// `RedisRateLimitScript` on the loop's pipelined connection. The script is sent in full (EVAL) only when
/// Redis does not have it (after a restart or SCRIPT FLUSH), and then loaded again by that very call.
final class RedisRateLimitStore {
    private let connection: RedisConnection
    let health: RedisHealth
    /// The rules of snapshot `version` as this loop sends them.
    private var rules: [RedisRule] = []
    private var version = -1

    static let scriptSHA1: String = Insecure.SHA1.hash(data: Array(RedisRateLimitScript.source.utf8))
        .map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()

    init(connection: RedisConnection, health: RedisHealth) {
        self.connection = connection
        self.health = health
    }

    /// What the store is asked for a request's candidate rules.
    func takes(_ candidates: [RequestRateLimit.Candidate], snapshot: Snapshot) -> [RedisTake] {
        if snapshot.version != version {
            rules = snapshot.rateLimits.identities.map(RedisRule.init)
            version = snapshot.version
        }
        return candidates.map { RedisTake(rule: rules[$0.index], key: $0.key, enforced: $0.enforced) }
    }

    /// Takes one request from every rule of `pending` at its instant: its `redisReplied` hears Redis and
    /// hands the reply back to `outcome(of:for:)`.
    func take(_ pending: PendingDispatch) {
        connection.send({ RedisRateLimitScript.writeCommand(pending.takes, now: pending.now, call: .sha1(Self.scriptSHA1),
                                                            into: &$0) }, waiter: pending)
    }

    /// What Redis's reply to `pending`'s command decides; nil when Redis did not have the script
    /// (restarted, SCRIPT FLUSH): it is sent in full, once, which loads it again, and the reply to that
    /// comes the same way.
    func outcome(of result: Result<RESPValue, RedisConnection.Failure>, for pending: PendingDispatch) -> RedisTakeOutcome? {
        if case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT"), !pending.sentInFull {
            pending.sentInFull = true
            connection.send({ RedisRateLimitScript.writeCommand(pending.takes, now: pending.now, call: .source, into: &$0) },
                            waiter: pending)
            return nil
        }
        return Self.outcome(result, takes: pending.takes, now: pending.now, health: health)
    }

    private static func outcome(_ result: Result<RESPValue, RedisConnection.Failure>, takes: [RedisTake], now: Int64,
                                health: RedisHealth) -> RedisTakeOutcome {
        switch result {
        case .failure(let failure):
            return .unavailable(failure.description)
        case .success(let reply):
            do {
                return .decided(try RedisRateLimitScript.decisions(reply, takes: takes, now: now))
            } catch {
                health.replyError("\(error)")
                return .unavailable("Redis answered \(error)")
            }
        }
    }
}

/// The `redis` store's health, shared by every loop's connection: it says once when Redis stops
/// answering and once when it answers again (not once per request or per loop), and counts what the
/// `failureMode` decided meanwhile.
final class RedisHealth: Sendable {
    private struct State {
        var up = true
        var lastProblem: String?
        var timeouts = 0
        var unavailable = 0
        var replyErrors = 0
        var failOpenAllowed = 0
        var failClosedDenied = 0
    }

    private let state = Mutex(State())
    /// `failureMode: allow`: requests pass while Redis cannot answer.
    let failOpen: Bool
    private let announce: @Sendable (String) -> Void

    init(failOpen: Bool, announce: @escaping @Sendable (String) -> Void) {
        self.failOpen = failOpen
        self.announce = announce
    }

    var lastProblem: String? { state.withLock { $0.lastProblem } }

    func failed(url: RedisURL, why: String) {
        let wasUp = state.withLock { state in
            defer { state.up = false; state.lastProblem = why; state.unavailable += 1 }
            return state.up
        }
        if wasUp { announceDown(url, why: why, until: "until it answers (reconnecting with back-off)") }
    }

    private func announceDown(_ url: RedisURL, why: String, until: String) {
        announce("rate-limit store \(url) unavailable: \(why); failureMode \(failOpen ? "allow" : "deny"): requests "
            + (failOpen ? "pass unlimited" : "are refused with 500") + " " + until)
    }

    func recovered(url: RedisURL) {
        let wasDown = state.withLock { state in
            defer { state.up = true; state.lastProblem = nil }
            return !state.up
        }
        if wasDown { announce("rate-limit store \(url) answers again: limits are enforced") }
    }

    /// A command got no answer in time: the first of an episode is announced like a failure.
    func timedOut(url: RedisURL, after timeout: TimeAmount) {
        let why = "no answer within \(timeout.nanoseconds / 1_000_000) ms"
        let wasUp = state.withLock { state in
            defer { state.timeouts += 1; state.up = false; state.lastProblem = state.lastProblem ?? why }
            return state.up
        }
        if wasUp { announceDown(url, why: why, until: "while it does not answer in time") }
    }

    func replyError(_ message: String) {
        let first = state.withLock { state in
            defer { state.replyErrors += 1 }
            return state.replyErrors == 0
        }
        if first { announce("rate-limit store: Redis answered the rate-limit script with \(message)") }
    }

    /// A request decided by `failureMode` because the store could not answer.
    func decidedByFailureMode() {
        state.withLock { state in if failOpen { state.failOpenAllowed += 1 } else { state.failClosedDenied += 1 } }
    }

    func prometheusText() -> String {
        let state = self.state.withLock { $0 }
        return """
            # HELP gatehouse_ratelimit_store_up Whether the redis rate-limit store answered its last command.
            # TYPE gatehouse_ratelimit_store_up gauge
            gatehouse_ratelimit_store_up \(state.up ? 1 : 0)
            # HELP gatehouse_ratelimit_store_errors_total Redis rate-limit store commands that got no answer: connections lost or refused, replies past the timeout, replies that were errors.
            # TYPE gatehouse_ratelimit_store_errors_total counter
            gatehouse_ratelimit_store_errors_total{reason="connection"} \(state.unavailable)
            gatehouse_ratelimit_store_errors_total{reason="timeout"} \(state.timeouts)
            gatehouse_ratelimit_store_errors_total{reason="reply"} \(state.replyErrors)
            # HELP gatehouse_ratelimit_store_failure_mode_total Requests the Bootstrap's failureMode decided while Redis could not answer.
            # TYPE gatehouse_ratelimit_store_failure_mode_total counter
            gatehouse_ratelimit_store_failure_mode_total{outcome="allowed"} \(state.failOpenAllowed)
            gatehouse_ratelimit_store_failure_mode_total{outcome="denied"} \(state.failClosedDenied)

            """
    }
}

extension RedisStoreSettings {
    /// For `rediss://`: Redis's certificate checked against `caCertificates` (else the system's CAs) and
    /// its name against the URL's host. nil for a plain URL.
    func makeTLSContext() throws -> NIOSSLContext? {
        guard url.tls else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let roots = caCertificatesPath { configuration.trustRoots = .file(roots) }
        return try NIOSSLContext(configuration: configuration)
    }
}
