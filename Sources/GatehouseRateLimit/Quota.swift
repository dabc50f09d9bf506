/// A `quota` rule: at most `requests` per calendar period. The state per key is the period it counts
/// and how many requests it has let through; a new period starts from zero.
public struct QuotaPolicy: Sendable, Hashable {
    public var requests: Int
    public var period: QuotaPeriod
    public var calendar: QuotaCalendar

    public init(requests: Int, period: QuotaPeriod, calendar: QuotaCalendar) {
        precondition(requests > 0 && requests < Int(UInt32.max), "validated at load: a positive quota under 2³²")
        self.requests = requests
        self.period = period
        self.calendar = calendar
    }

    /// What one key has used: the period's start (seconds since 1970) and the requests counted in it.
    public struct Usage: Sendable, Hashable {
        public var windowStart: Int64
        public var count: Int

        public init(windowStart: Int64 = 0, count: Int = 0) {
            self.windowStart = windowStart
            self.count = count
        }

        /// As one word, for the stores that keep one per key: the period's start in minutes (every
        /// zone's periods start on a whole minute) above a 32-bit count.
        public var packed: Int64 { (windowStart / 60) << 32 | Int64(min(count, Int(UInt32.max))) }

        public init(packed: Int64) {
            self.init(windowStart: (packed >> 32) * 60, count: Int(packed & 0xFFFF_FFFF))
        }
    }

    /// Counts one request at `now` (seconds since 1970) in `window`, the period holding `now` (the caller
    /// keeps it, so the calendar is consulted once a period, not per request).
    public func take(_ usage: Usage, now: Int64, window: QuotaWindow) -> (usage: Usage, decision: RateLimitDecision) {
        let current = usage.windowStart == window.start ? usage : Usage(windowStart: window.start, count: 0)
        let reset = Int(max(0, window.end - now))
        guard current.count < requests else {
            return (current, RateLimitDecision(allowed: false, limit: requests, remaining: 0, resetSeconds: reset,
                                               retryAfterSeconds: reset))
        }
        let next = Usage(windowStart: window.start, count: current.count + 1)
        return (next, RateLimitDecision(allowed: true, limit: requests, remaining: requests - next.count,
                                        resetSeconds: reset, retryAfterSeconds: 0))
    }
}
