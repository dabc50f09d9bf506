import Synchronization

/// One event loop's counts of policy decisions and JWT outcomes. The request path adds under a lock no
/// other thread takes but the scrape, keyed by the identity of the deciding rule's label: no string is
/// hashed per request. The scrape folds the entries into totals by name, so counts outlive the
/// snapshot (and labels) they were made under.
public final class DecisionCounters: Sendable {
    public struct Key: Hashable, Sendable {
        public var policy: String
        public var action: String
        public var decision: String
    }

    struct Live {
        var owner: any AnyObject & Sendable
        var policy: String
        var action: String
        var allowed = 0
        var denied = 0
    }

    struct State {
        var live: [ObjectIdentifier: Live] = [:]
        var folded: [Key: Int] = [:]
        var authenticated = 0
        var failures: [String: Int] = [:]
        var liveLimits: [ObjectIdentifier: LiveLimit] = [:]
        var foldedLimits: [RateLimitKey: Int] = [:]
    }

    /// What a RateLimitPolicy rule did with a request it matched.
    public enum RateLimitOutcome: String, Sendable, CaseIterable {
        case allowed
        /// Refused with 429.
        case limited
        /// A shadow rule found the limit exhausted and let the request through.
        case shadowLimited = "shadow_limited"
    }

    public struct RateLimitKey: Hashable, Sendable {
        public var rule: String
        public var outcome: RateLimitOutcome
    }

    struct LiveLimit {
        var owner: any AnyObject & Sendable
        var rule: String
        var counts = [0, 0, 0]
    }

    private let state = Mutex<State>(State())

    public init() {}

    /// `owner` identifies the rule (its label object, kept alive until the next scrape); `policy` and
    /// `action` are only read the first time it is seen.
    public func recordDecision(owner: any AnyObject & Sendable, policy: @autoclosure () -> String, action: @autoclosure () -> String,
                               allowed: Bool) {
        let key = ObjectIdentifier(owner)
        state.withLock { state in
            if state.live[key] == nil {
                // Without scrapes, reloads would keep adding labels: fold now and then instead.
                if state.live.count >= Self.foldThreshold { Self.fold(&state) }
                state.live[key] = Live(owner: owner, policy: policy(), action: action())
            }
            if allowed { state.live[key]!.allowed += 1 } else { state.live[key]!.denied += 1 }
        }
    }

    static let foldThreshold = 4096

    private static func fold(_ state: inout State) {
        for live in state.live.values {
            if live.allowed > 0 { state.folded[Key(policy: live.policy, action: live.action, decision: "allow"), default: 0] += live.allowed }
            if live.denied > 0 { state.folded[Key(policy: live.policy, action: live.action, decision: "deny"), default: 0] += live.denied }
        }
        state.live.removeAll(keepingCapacity: true)
    }

    /// `owner` identifies the rule (its compiled object); `rule` (`ns/policy/rule`) is read the first time.
    public func recordRateLimit(owner: any AnyObject & Sendable, rule: @autoclosure () -> String, outcome: RateLimitOutcome) {
        let key = ObjectIdentifier(owner)
        let slot = outcome == .allowed ? 0 : outcome == .limited ? 1 : 2
        state.withLock { state in
            // One hash lookup for a rule already counted (every request but its first).
            if let index = state.liveLimits.index(forKey: key) {
                state.liveLimits.values[index].counts[slot] += 1
                return
            }
            if state.liveLimits.count >= Self.foldThreshold { Self.foldLimits(&state) }
            var live = LiveLimit(owner: owner, rule: rule())
            live.counts[slot] += 1
            state.liveLimits[key] = live
        }
    }

    private static func foldLimits(_ state: inout State) {
        for live in state.liveLimits.values {
            for (slot, outcome) in RateLimitOutcome.allCases.enumerated() where live.counts[slot] > 0 {
                state.foldedLimits[RateLimitKey(rule: live.rule, outcome: outcome), default: 0] += live.counts[slot]
            }
        }
        state.liveLimits.removeAll(keepingCapacity: true)
    }

    /// Rate-limit outcomes so far, by rule and outcome.
    func rateLimitSnapshot() -> [RateLimitKey: Int] {
        state.withLock { state in
            Self.foldLimits(&state)
            return state.foldedLimits
        }
    }

    public func recordAuthenticated() {
        state.withLock { $0.authenticated += 1 }
    }

    public func recordAuthenticationFailure(_ details: String) {
        state.withLock { $0.failures[details, default: 0] += 1 }
    }

    /// Totals so far; folds the per-rule entries into names so old labels can go.
    func snapshot() -> ([Key: Int], [String: Int]) {
        state.withLock { state in
            Self.fold(&state)
            var outcomes = state.failures
            if state.authenticated > 0 { outcomes["authenticated"] = state.authenticated }
            return (state.folded, outcomes)
        }
    }
}
