/// The `redis` store's one round trip for the requests of a loop tick: a Lua script that takes, for
/// each request in turn, one request from every rule that applies to it, in order, atomically (Redis
/// runs a script alone), so gateways sharing the Redis share each limit exactly. One script call for
/// many requests, rather than one each: most of a call's cost in Redis is the call itself (measured
/// with redis-benchmark: 4.9 µs a call for one take, 2.6 µs a take in calls of 24).
///
/// The arithmetic is `TokenBucketPolicy`'s and `QuotaPolicy`'s. The script only decides allowed or not
/// and the new state, with the same comparisons; the figures a response reports are computed here from
/// the state the script read, by the same Swift code every store runs. Lua's numbers are doubles, exact
/// to 2⁵³, so instants in Redis are microseconds (nanoseconds since 1970 are past 2⁶⁰): a bucket is
/// the rule's bucket with its unit in microseconds (a rate above a million requests a second per key
/// counts as a million).
public enum RedisRateLimitScript {
    /// KEYS: every request's rules' counters for its keys, request after request. ARGV[1]: now (µs
    /// since 1970). Then per request: its number of rules, and 6 per rule:
    ///   kind ("b": a token bucket's full-again instant, µs; "q": a quota's count in the period the key
    ///   names), bound (a bucket's tolerance, µs: burst − 1 intervals; a quota's requests), step (a
    ///   bucket's interval, µs; 1), enforced (1|0), expiry (ms since 1970), fresh (the value a key holds
    ///   after its first take: now + interval; 1).
    /// A request's first enforced refusal stops its rules before anything of it is written, so a refused
    /// request counts against no rule. Returns, per request, {stopped at (0: none), state read, …} for
    /// the keys read.
    ///
    /// Every number written is one the gateway sent (`fresh`, `expiry`) or Redis's own integer
    /// arithmetic (INCRBY): Lua's numbers are doubles, and turning one into a Redis argument either
    /// costs a `string.format` (most of the script's time in Redis, measured) or, from Redis 7.2, may
    /// come out as `1.7e+15`. So a bucket's key expires at a bound the gateway computes, now +
    /// tolerance + interval (an allowed take leaves the bucket full again by then at the latest) and a
    /// second's grace for gateways whose clocks differ: never before the bucket is full again, at most a
    /// burst and a second later. A quota's key gets its expiry when it is made.
    public static let source = """
        local now = tonumber(ARGV[1])
        local function allows(at, state)
          if ARGV[at] == 'b' then return state - now <= tonumber(ARGV[at + 1]) end
          return state < tonumber(ARGV[at + 1])
        end
        local replies = {}
        local key, at = 1, 2
        while at <= #ARGV do
          local n = tonumber(ARGV[at])
          at = at + 1
          local states = {0}
          for i = 0, n - 1 do
            local state = tonumber(redis.call('GET', KEYS[key + i])) or 0
            states[i + 2] = state
            if ARGV[at + i * 6 + 3] == '1' and not allows(at + i * 6, state) then
              states[1] = i + 1
              break
            end
          end
          if states[1] == 0 then
            for i = 0, n - 1 do
              local k, a, state = KEYS[key + i], at + i * 6, states[i + 2]
              if allows(a, state) then
                if state == 0 or (ARGV[a] == 'b' and state <= now) then
                  redis.call('SET', k, ARGV[a + 5], 'PXAT', ARGV[a + 4])
                else
                  redis.call('INCRBY', k, ARGV[a + 2])
                  if ARGV[a] == 'b' then redis.call('PEXPIREAT', k, ARGV[a + 4]) end
                end
              end
            end
          end
          replies[#replies + 1] = states
          key, at = key + n, at + n * 6
        end
        return replies
        """

    /// The part of every key that names the rule: its identity hashed (FNV-1a, 64 bits), so a rule whose
    /// name, key attributes or arithmetic change starts afresh, and every gateway with the same rule
    /// names the same keys.
    public static func namespace(of identity: CounterIdentity) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in identity.persistentName.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "gatehouse:rl:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// How long a quota's key outlives its period: a gateway whose clock lags still counts in it.
    static let quotaGraceMilliseconds: Int64 = 300_000
    /// How long a bucket's key outlives the instant it is full again by this gateway's clock: another
    /// gateway's clock may be ahead by that much.
    static let bucketGraceMilliseconds: Int64 = 1_000

    /// The bucket a rule is in Redis: the same rule with instants in microseconds.
    static func microsecondBucket(_ bucket: TokenBucketPolicy) -> TokenBucketPolicy {
        var micro = TokenBucketPolicy(requests: bucket.requests, unitNanoseconds: max(1, bucket.unitNanoseconds / 1_000),
                                      burst: bucket.burst)
        micro.nanosecondsPerTick = 1_000
        return micro
    }

    /// How the script is called: by its SHA-1 (Redis keeps scripts it has run), or in full.
    public enum Call: Sendable {
        case sha1(String)
        case source
    }

    /// Writes the command for `requests` (each its rules' takes) at `now`: EVALSHA and the script's
    /// hash (or EVAL and the script), numkeys, KEYS, ARGV, straight into `writer`, the rules' constant
    /// arguments copied as they are.
    public static func writeCommand(_ requests: [[RedisTake]], now: Int64, call: Call, into writer: inout RESPCommandWriter) {
        let keys = requests.reduce(0) { $0 + $1.count }
        writer.begin(arguments: 4 + requests.count + keys * 7)
        switch call {
        case .sha1(let hash):
            writer.argument("EVALSHA")
            writer.argument(hash)
        case .source:
            writer.argument("EVAL")
            writer.argument(source)
        }
        writer.argument(Int64(keys))
        for takes in requests {
            for take in takes {
                let periodStart = take.periodStart(now: now)
                writer.startArgument(length: take.rule.keyPrefix.count + take.key.utf8.count
                    + (periodStart.map { 1 + RESPCommandWriter.decimalLength($0) } ?? 0))
                appendKey(of: take, periodStart: periodStart) { writer.append($0) } text: { writer.append($0) } number: {
                    writer.append($0)
                }
                writer.endArgument()
            }
        }
        let nowMicros = now / 1_000
        writer.argument(nowMicros)
        for takes in requests {
            writer.argument(Int64(takes.count))
            for take in takes {
                writer.append(take.rule.constantArguments)
                writer.append(take.enforced ? enforcedArgument : shadowArgument)
                if let bucket = take.rule.microBucket {
                    // Full again by then at the latest (see `source`), to the millisecond rounded up.
                    writer.argument((nowMicros + bucket.tolerance + bucket.interval + 999) / 1_000 + bucketGraceMilliseconds)
                    writer.argument(nowMicros + bucket.interval)
                } else {
                    writer.argument((take.rule.window(at: now)?.end ?? 0) * 1_000 + quotaGraceMilliseconds)
                    writer.argument(1)
                }
            }
        }
    }

    private static let enforcedArgument = Array("$1\r\n1\r\n".utf8)
    private static let shadowArgument = Array("$1\r\n0\r\n".utf8)

    /// The Redis key of `take`'s counter at `now`: a limit's is the rule's namespace and the request's
    /// key; a quota's also names the period, so a new period is a new key.
    public static func key(_ take: RedisTake, now: Int64) -> String {
        var key: [UInt8] = []
        appendKey(of: take, periodStart: take.periodStart(now: now)) { key += $0 } text: { key += $0.utf8 } number: {
            key += String($0).utf8
        }
        return String(decoding: key, as: UTF8.self)
    }

    /// A key's parts in order, the one place their layout is written down.
    private static func appendKey(of take: RedisTake, periodStart: Int64?, bytes: ([UInt8]) -> Void, text: (String) -> Void,
                                  number: (Int64) -> Void) {
        bytes(take.rule.keyPrefix)
        text(take.key)
        if let periodStart {
            text(":")
            number(periodStart)
        }
    }

    /// What `take`'s rule decides at `now` from the counter's `state` as Redis keeps it (a µs instant, or
    /// a count in the key's period; 0 for a key Redis does not have): the figures the script's decision
    /// is reported with, by the arithmetic every store runs.
    public static func decision(state: Int64, for take: RedisTake, now: Int64) -> RateLimitDecision {
        if let bucket = take.rule.microBucket { return bucket.take(state: state, now: now / 1_000).decision }
        guard case .quota(let quota) = take.rule.identity.algorithm, let window = take.rule.window(at: now) else {
            preconditionFailure("a rule is a bucket or a quota")
        }
        return quota.take(QuotaPolicy.Usage(windowStart: window.start, count: Int(state)), now: now / 1_000_000_000,
                          window: window).decision
    }

    public struct ReplyError: Error, Equatable, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    /// The script's reply split per request: `count` replies, one per request of the command.
    public static func requestReplies(_ reply: RESPValue, count: Int) throws(ReplyError) -> [RESPValue] {
        if case .error(let message) = reply { throw ReplyError(description: message) }
        guard case .array(let replies?) = reply, replies.count == count else {
            throw ReplyError(description: "unexpected reply \(reply) for \(count) requests")
        }
        return replies
    }

    /// Each rule's decision from the script's reply, in order; nil for the rules after the one that
    /// refused the request (the script did not reach them).
    public static func decisions(_ reply: RESPValue, takes: [RedisTake], now: Int64) throws(ReplyError) -> [RateLimitDecision?] {
        guard case .array(let elements?) = reply, let first = elements.first, case .integer(let stoppedAt) = first,
              stoppedAt >= 0, stoppedAt <= takes.count else {
            if case .error(let message) = reply { throw ReplyError(description: message) }
            throw ReplyError(description: "unexpected reply \(reply)")
        }
        let read = stoppedAt == 0 ? takes.count : Int(stoppedAt)
        guard elements.count == read + 1 else { throw ReplyError(description: "\(elements.count - 1) states for \(read) keys") }
        var out: [RateLimitDecision?] = []
        out.reserveCapacity(takes.count)
        for (index, take) in takes.enumerated() {
            guard index < read, case .integer(let state) = elements[index + 1] else {
                out.append(nil)
                continue
            }
            out.append(decision(state: state, for: take, now: now))
        }
        return out
    }
}
