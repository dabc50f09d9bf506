#if canImport(Glibc)
import Glibc
#endif
import Crypto
import GatehouseConfig
import GatehouseHTTP1
import GatehouseRateLimit
import GatehouseRouting
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry

/// Step 7 of the request path: RateLimitPolicy. Every rule whose `match` holds and whose key attributes
/// the request has takes one request from its counter, in order; the first one exhausted refuses the
/// request with 429 (a shadow rule only counts and logs), and what the earlier rules took is given back,
/// so a refused request counts against no rule.
struct RequestRateLimit {
    /// The rule closest to exhaustion among those that let the request through (shadow rules aside):
    /// its figures go into the allowed response's `x-ratelimit-*` headers.
    private(set) var tightest: (rule: RateLimitRule, decision: RateLimitDecision)?

    /// A rule that applies to the request: its position in `RateLimits.rules`, the request's key, and
    /// whether its refusal refuses the request (drawn now for a partial `filter_enforced`, so every
    /// store is told the same).
    struct Candidate {
        var index: Int
        var key: String
        var enforced: Bool
    }

    /// One rule as `explain` reports it.
    struct Observation {
        /// Its position in `RateLimits.rules`.
        var index: Int
        var rule: RateLimitRule
        var mismatch: RuleMismatch?
        /// nil: the rule did not apply (no match, or a key attribute missing).
        var key: String?
        var decision: RateLimitDecision?
        /// Why the rule was passed over before its match and key, when it was.
        var passedOver: String? = nil
    }

    /// nil when the request may go on; otherwise the 429 that refuses it. The `memory` (and `sqlite`)
    /// store: the counters are this process's, so the answer is immediate.
    mutating func check(head: RequestHead, target: RequestTarget, origin: DownstreamOrigin, virtualHost: VirtualHost?,
                        route: Route?, security: inout RequestSecurity, snapshot: Snapshot, loop: LoopContext,
                        counters: DecisionCounters?, record: inout AccessLogRecord,
                        observe: ((Observation) -> Void)? = nil) -> LocalReply? {
        let limits = snapshot.rateLimits
        guard !limits.isEmpty else { return nil }
        let candidates = Self.candidates(head: head, target: target, origin: origin, virtualHost: virtualHost, route: route,
                                         security: &security, snapshot: snapshot, loop: loop, observe: observe)
        guard !candidates.isEmpty else { return nil }
        let decisions = Self.takeFromMemory(candidates, snapshot: snapshot, loop: loop, now: Self.now(record))
        return conclude(candidates, decisions: decisions, limits: limits, counters: counters, record: &record, observe: observe)
    }

    /// The rules that apply to the request, in order, with its key for each: those whose listener,
    /// `filter_enabled` draw, descriptors and match hold, and whose key attributes the request has.
    static func candidates(head: RequestHead, target: RequestTarget, origin: DownstreamOrigin, virtualHost: VirtualHost?,
                           route: Route?, security: inout RequestSecurity, snapshot: Snapshot, loop: LoopContext,
                           observe: ((Observation) -> Void)? = nil) -> [Candidate] {
        let limits = snapshot.rateLimits
        var request: AuthorizationRequest?
        var host = ""
        if limits.anyMatch {
            request = security.attributes(head: head, target: target, origin: origin, snapshot: snapshot)
            host = RequestMatcher.lowercasedHost(of: request!)
        }
        var candidates: [Candidate] = []
        for (index, rule) in limits.rules.enumerated() {
            // An EnvoyFilter's bucket: its listener, virtual host or route, and its filter_enabled share.
            if rule.scope != nil || !rule.exclusions.isEmpty,
               !rule.applies(port: origin.listenerPort, virtualHost: virtualHost, route: route) {
                observe?(Observation(index: index, rule: rule, passedOver: "not this listener, virtual host or route"))
                continue
            }
            if rule.enabledPerMillion < RateLimitRule.all,
               loop.random.next() % UInt64(RateLimitRule.all) >= UInt64(rule.enabledPerMillion) {
                observe?(Observation(index: index, rule: rule, passedOver: "not drawn (filter_enabled "
                    + "\(Double(rule.enabledPerMillion) / 10_000)%)"))
                continue
            }
            if let match = rule.descriptors,
               let passedOver = descriptorMismatch(match, head: head, target: target, origin: origin, snapshot: snapshot) {
                observe?(Observation(index: index, rule: rule, passedOver: passedOver))
                continue
            }
            if rule.hasMatch, let request, let mismatch = limits.matcher.mismatch(rule: index, request, host: host) {
                observe?(Observation(index: index, rule: rule, mismatch: mismatch))
                continue
            }
            guard let key = key(rule.key, head: head, target: target, origin: origin, route: route,
                                security: security, snapshot: snapshot) else {
                observe?(Observation(index: index, rule: rule))
                continue
            }
            let enforced = rule.enforcedPerMillion == RateLimitRule.all
                || (rule.enforcedPerMillion > 0
                    && loop.random.next() % UInt64(RateLimitRule.all) < UInt64(rule.enforcedPerMillion))
            candidates.append(Candidate(index: index, key: key, enforced: enforced))
        }
        return candidates
    }

    /// Takes one request from each candidate's counter in this process, in order. The first enforced
    /// refusal stops: what the rules before it took is given back, and the rules after it are not
    /// taken from (nil), so a refused request counts against no rule.
    static func takeFromMemory(_ candidates: [Candidate], snapshot: Snapshot, loop: LoopContext, now: Int64) -> [RateLimitDecision?] {
        loop.rateLimiter.prepare(version: snapshot.version, identities: snapshot.rateLimits.identities, store: loop.counterStore)
        var decisions: [RateLimitDecision?] = []
        decisions.reserveCapacity(candidates.count)
        for (position, candidate) in candidates.enumerated() {
            let decision = loop.rateLimiter.take(rule: candidate.index, key: candidate.key, now: now)
            decisions.append(decision)
            if !decision.allowed, candidate.enforced {
                for (earlier, taken) in zip(candidates, decisions).prefix(position) where taken?.allowed == true {
                    loop.rateLimiter.refund(rule: earlier.index, key: earlier.key, now: now)
                }
                decisions += Array(repeating: nil, count: candidates.count - position - 1)
                break
            }
        }
        return decisions
    }

    /// The request's fate from its rules' decisions: the first enforced refusal refuses it with the
    /// rule's reply; otherwise it goes on, with the tightest rule's figures for its response headers.
    /// Counts each rule's outcome and fills the access log's `ratelimit` field.
    mutating func conclude(_ candidates: [Candidate], decisions: [RateLimitDecision?], limits: RateLimits,
                           counters: DecisionCounters?, record: inout AccessLogRecord,
                           observe: ((Observation) -> Void)? = nil) -> LocalReply? {
        var shadowLimited: (rule: RateLimitRule, decision: RateLimitDecision)?
        for (candidate, decision) in zip(candidates, decisions) {
            guard let decision else { break }
            let rule = limits.rules[candidate.index]
            observe?(Observation(index: candidate.index, rule: rule, key: candidate.key, decision: decision))
            if decision.allowed {
                counters?.recordRateLimit(owner: rule, rule: rule.id, outcome: .allowed)
                if !rule.shadow, tightest.map({ decision.remaining < $0.decision.remaining }) ?? true {
                    tightest = (rule, decision)
                }
                continue
            }
            if !candidate.enforced {
                counters?.recordRateLimit(owner: rule, rule: rule.id, outcome: .shadowLimited)
                if shadowLimited == nil { shadowLimited = (rule, decision) }
                continue
            }
            counters?.recordRateLimit(owner: rule, rule: rule.id, outcome: .limited)
            record.ratelimit = RateLimitLogEntry(rule: rule.id, remaining: 0)
            return .rateLimited(decision, reply: rule.reply)
        }
        if let shadowLimited {
            record.ratelimit = RateLimitLogEntry(rule: shadowLimited.rule.id, remaining: 0, shadowLimited: true)
        } else if let tightest {
            record.ratelimit = RateLimitLogEntry(rule: tightest.rule.id, remaining: tightest.decision.remaining)
        }
        return nil
    }

    /// The figures an allowed response's `x-ratelimit-*` headers report, when a rule applied and its
    /// policy wants them.
    var allowedResponseDecision: RateLimitDecision? {
        guard let tightest, tightest.rule.reply.allowedHeaders else { return nil }
        return tightest.decision
    }

    /// The counter's key: the attributes' values, or nil when one is missing (the rule does not apply).
    /// One attribute is its value; several are each prefixed by their length, so no two lists of
    /// values make the same key. A key longer than 128 bytes is kept as its SHA-256, so a client's long
    /// header cannot make the counters hold it.
    static func key(_ attributes: [RateLimitKeyAttribute], head: RequestHead, target: RequestTarget,
                    origin: DownstreamOrigin, route: Route?, security: RequestSecurity, snapshot: Snapshot) -> String? {
        switch attributes.count {
        case 0: return ""
        case 1:
            return value(attributes[0], head: head, target: target, origin: origin, route: route, security: security,
                         snapshot: snapshot).map(bounded)
        default:
            var key = ""
            for attribute in attributes {
                guard let value = value(attribute, head: head, target: target, origin: origin, route: route,
                                        security: security, snapshot: snapshot) else { return nil }
                key += "\(value.utf8.count):\(value)"
            }
            return bounded(key)
        }
    }

    /// nil when the rule's descriptors let it apply; otherwise why not (for `explain`).
    static func descriptorMismatch(_ match: DescriptorMatch, head: RequestHead, target: RequestTarget,
                                   origin: DownstreamOrigin, snapshot: Snapshot) -> String? {
        let made = match.actions.compactMap { descriptor($0, head: head, target: target, origin: origin, snapshot: snapshot) }
        if let entries = match.entries {
            return made.contains(entries) ? nil : "the request's descriptors do not include this one"
        }
        if match.onlyWhenNoneMatched, match.siblings.contains(where: made.contains) {
            return "a descriptor bucket took the request (always_consume_default_token_bucket: false)"
        }
        return nil
    }

    /// The descriptor one rate limit's actions make of the request; nil when an action finds nothing
    /// (Envoy then makes no descriptor for that rate limit).
    static func descriptor(_ actions: [DescriptorAction], head: RequestHead, target: RequestTarget,
                           origin: DownstreamOrigin, snapshot: Snapshot) -> [DescriptorEntry]? {
        var entries: [DescriptorEntry] = []
        for action in actions {
            switch action {
            case .requestHeader(let name, let key, let skipIfAbsent):
                let value: String? = switch name {
                case ":path": target.path + (target.query.map { "?\($0)" } ?? "")
                case ":authority", "host": target.authority
                case ":method": head.method
                case ":scheme": origin.tls == nil ? "http" : "https"
                default: head.headers.joinedValues(name)
                }
                if let value { entries.append(DescriptorEntry(key: key, value: value)) } else if !skipIfAbsent { return nil }
            case .remoteAddress:
                guard let address = value(.remoteIP, head: head, target: target, origin: origin, route: nil,
                                          security: RequestSecurity(), snapshot: snapshot) else { return nil }
                entries.append(DescriptorEntry(key: "remote_address", value: address))
            case .genericKey(let key, let value):
                entries.append(DescriptorEntry(key: key, value: value))
            }
        }
        return entries.isEmpty ? nil : entries
    }

    static let longestKey = 128

    static func bounded(_ key: String) -> String {
        guard key.utf8.count > longestKey else { return key }
        return "sha256:" + SHA256.hash(data: Array(key.utf8)).map { byte in
            let hex = Array("0123456789abcdef".utf8)
            return String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]], as: UTF8.self)
        }.joined()
    }

    static func value(_ attribute: RateLimitKeyAttribute, head: RequestHead, target: RequestTarget,
                      origin: DownstreamOrigin, route: Route?, security: RequestSecurity, snapshot: Snapshot) -> String? {
        switch attribute {
        case .sourceIP:
            return origin.clientIP
        case .remoteIP:
            guard snapshot.settings.numTrustedProxies > 0 else { return origin.clientIP }
            let peer = origin.clientAddress ?? origin.clientIP.flatMap { IPAddress($0) }
            return RequestSecurity.remoteIP(forwardedFor: head.headers.values("x-forwarded-for"), peer: peer,
                                            trustedHops: snapshot.settings.numTrustedProxies)?.description ?? origin.clientIP
        case .sourcePrincipal:
            return origin.tls?.peerPrincipal
        case .requestPrincipal:
            return security.identity?.principal
        case .claim(let name):
            // `request.auth.claims[a][b]`: the nested claim b of a.
            let path = name.components(separatedBy: "][")
            guard let values = security.identity?.claim(path), !values.isEmpty else { return nil }
            return values.joined(separator: ",")
        case .header(let name):
            // Every value, joined with `,`, as Envoy reads a repeated header.
            return head.headers.joinedValues(name)
        case .connectionSNI:
            return origin.tls?.serverName
        case .host:
            // Case and port do not make another client: `API.example.com:443` counts as `api.example.com`.
            let host = Authority.split(target.authority).host
            return host.isEmpty ? nil : host.lowercased()
        case .route:
            return route?.name
        }
    }

    /// The request's instant for its rate limits: when it started (the access log's `start_time`, read
    /// from the clock once already), to the millisecond. Within a millisecond a bucket then refills
    /// nothing, which can only refuse earlier, never let more through. (A clock read per request showed
    /// as 1 % of one on this VM.)
    static func now(_ record: AccessLogRecord) -> Int64 {
        record.startTimeMillis > 0 ? record.startTimeMillis * 1_000_000 : now()
    }

    /// Wall-clock nanoseconds: counters are kept on the clock every store and replica shares.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}

extension LocalReply {
    /// Envoy's local rate limit refusal, with the limit's figures as the rule's reply asks.
    static func rateLimited(_ decision: RateLimitDecision, reply: RateLimitReply = RateLimitReply()) -> LocalReply {
        var headers = reply.limitHeaders ? rateLimitHeaders(decision) : []
        if reply.retryAfter { headers.append(("retry-after", String(max(1, decision.retryAfterSeconds)))) }
        if reply.envoyRateLimited { headers.append(("x-envoy-ratelimited", "true")) }
        headers += reply.headers
        return LocalReply(status: reply.status, body: Array("local_rate_limited".utf8), flag: .rateLimited,
                          details: "local_rate_limited", extraHeaders: headers, grpcStatus: reply.grpcStatus)
    }

    /// `x-ratelimit-limit`, `-remaining` and `-reset` (seconds), as Envoy's draft-03 rate-limit headers.
    static func rateLimitHeaders(_ decision: RateLimitDecision) -> [(name: String, value: String)] {
        [("x-ratelimit-limit", String(decision.limit)), ("x-ratelimit-remaining", String(decision.remaining)),
         ("x-ratelimit-reset", String(decision.resetSeconds))]
    }
}

extension HTTPHeaderBlock {
    /// Sets `x-ratelimit-limit`, `-remaining` and `-reset` on an upstream's response, replacing any it
    /// sent (found by their role, recognised when the response was parsed), the numbers written as they
    /// are: this runs on every allowed response of a limited route.
    mutating func setRateLimitHeaders(_ decision: RateLimitDecision) {
        remove(role: .rateLimit)
        add("x-ratelimit-limit", decimal: Int64(decision.limit), role: .rateLimit)
        add("x-ratelimit-remaining", decimal: Int64(decision.remaining), role: .rateLimit)
        add("x-ratelimit-reset", decimal: Int64(decision.resetSeconds), role: .rateLimit)
    }
}
