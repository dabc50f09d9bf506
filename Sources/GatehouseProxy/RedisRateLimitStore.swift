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

/// One event loop's `redis` rate-limit store: the requests of a loop tick share one `EVALSHA` of
/// `RedisRateLimitScript` on the loop's pipelined connection (a batch: requests arriving together, as
/// under load, cost Redis one script call). The script is sent in full (EVAL) only when Redis does not
/// have it (after a restart or SCRIPT FLUSH), and then loaded again by that very call.
final class RedisRateLimitStore {
    private let connection: RedisConnection
    let health: RedisHealth
    /// The rules of snapshot `version` as this loop sends them.
    private var rules: [RedisRule] = []
    private var version = -1
    /// The requests of this tick not sent yet.
    private var batch: [PendingDispatch] = []

    /// The most requests one command carries: a bound on the command, on the reply, and on the time
    /// Redis runs one script (others' commands wait meanwhile).
    static let largestBatch = 64

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

    /// Takes one request from every rule of `pending`, with the other requests of this loop tick: its
    /// `answered` hears the outcome.
    func take(_ pending: PendingDispatch) {
        if batch.isEmpty {
            // After this tick's reads: every request they started joins the batch first.
            connection.eventLoop.assumeIsolated().execute { [self] in sendBatch() }
        }
        batch.append(pending)
        if batch.count == Self.largestBatch { sendBatch() }
    }

    private func sendBatch() {
        guard !batch.isEmpty else { return }
        let sent = RedisBatch(batch, store: self)
        batch.removeAll(keepingCapacity: true)
        send(sent, call: .sha1(Self.scriptSHA1))
    }

    fileprivate func send(_ batch: RedisBatch, call: RedisRateLimitScript.Call) {
        connection.send({ RedisRateLimitScript.writeCommand(batch.takes, now: batch.now, call: call, into: &$0) },
                        waiter: batch)
    }
}

/// The requests one command carries, waiting for its reply together.
private final class RedisBatch: RedisReplyWaiter {
    private let requests: [PendingDispatch]
    /// Each request's takes, in order.
    let takes: [[RedisTake]]
    /// The instant every take of the batch is at: the latest of the requests' (a few hundred µs at
    /// most past the earliest), so the figures each request reports are those the script decided on.
    let now: Int64
    // Strong: a batch the connection still holds (answered, failed or timed out, always) keeps its store.
    private let store: RedisRateLimitStore
    /// The script was sent in full after Redis said it did not have it (once only).
    private var sentInFull = false

    init(_ requests: [PendingDispatch], store: RedisRateLimitStore) {
        self.requests = requests
        takes = requests.map(\.takes)
        now = requests.reduce(Int64.min) { max($0, $1.now) }
        self.store = store
    }

    func redisReplied(_ result: Result<RESPValue, RedisConnection.Failure>) {
        switch result {
        case .failure(let failure):
            for request in requests { request.answered(.unavailable(failure.description)) }
        case .success(.error(let message)) where message.hasPrefix("NOSCRIPT") && !sentInFull:
            // Redis restarted or flushed its scripts: sent in full, once, which loads it again; the
            // reply to that comes here the same way.
            sentInFull = true
            store.send(self, call: .source)
        case .success(let reply):
            do {
                let replies = try RedisRateLimitScript.requestReplies(reply, count: requests.count)
                for (index, request) in requests.enumerated() {
                    request.answered(.decided(try RedisRateLimitScript.decisions(replies[index], takes: takes[index], now: now)))
                }
            } catch {
                store.health.replyError("\(error)")
                for request in requests { request.answered(.unavailable("Redis answered \(error)")) }
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
