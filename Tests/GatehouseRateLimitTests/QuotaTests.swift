import Testing
@testable import GatehouseRateLimit

/// Calendar-aligned quotas on an injected clock (seconds since 1970): period boundaries in UTC and in
/// a zone with daylight saving, month lengths, and the count starting again with each period.
@Suite struct QuotaTests {
    let utc = QuotaCalendar(timeZone: "UTC")!

    /// Seconds since 1970 of a UTC date and time.
    static func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
        // Days from civil (Howard Hinnant's algorithm), so the test does not lean on the calendar it tests.
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + Int64(hour * 3_600 + minute * 60 + second)
    }

    @Test func periodsAreCalendarAlignedInUTC() {
        let instant = Self.utc(2026, 12, 7, 13, 45, 10)
        #expect(utc.window(of: .hour, containing: instant) == QuotaWindow(start: Self.utc(2026, 12, 7, 13), end: Self.utc(2026, 12, 7, 14)))
        #expect(utc.window(of: .day, containing: instant) == QuotaWindow(start: Self.utc(2026, 12, 7), end: Self.utc(2026, 12, 8)))
        #expect(utc.window(of: .month, containing: instant) == QuotaWindow(start: Self.utc(2026, 12, 1), end: Self.utc(2027, 1, 1)))
    }

    @Test func monthsHaveTheirOwnLengthsLeapFebruaryIncluded() {
        let february = utc.window(of: .month, containing: Self.utc(2028, 2, 29, 23, 59, 59))
        #expect(february == QuotaWindow(start: Self.utc(2028, 2, 1), end: Self.utc(2028, 3, 1)))
        #expect(february.end - february.start == 29 * 86_400)
        #expect(!february.contains(Self.utc(2028, 3, 1)), "the first second of March is March's")
    }

    @Test func aDayInAZoneWithDaylightSavingLasts23Or25Hours() throws {
        let newYork = try #require(QuotaCalendar(timeZone: "America/New_York"))
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT; midnight EST is 05:00 UTC.
        let spring = newYork.window(of: .day, containing: Self.utc(2026, 3, 8, 12))
        #expect(spring == QuotaWindow(start: Self.utc(2026, 3, 8, 5), end: Self.utc(2026, 3, 9, 4)))
        #expect(spring.end - spring.start == 23 * 3_600)
        // 2026-11-01: clocks go back from 02:00 EDT to 01:00 EST.
        let autumn = newYork.window(of: .day, containing: Self.utc(2026, 11, 1, 12))
        #expect(autumn.end - autumn.start == 25 * 3_600)
        // A month in local time: November starts at local midnight, 04:00 UTC (still EDT).
        #expect(newYork.window(of: .month, containing: Self.utc(2026, 11, 15)).start == Self.utc(2026, 11, 1, 4))
    }

    @Test func anHourInAHalfHourZoneStartsOnTheLocalHour() throws {
        let kolkata = try #require(QuotaCalendar(timeZone: "Asia/Kolkata"))
        let window = kolkata.window(of: .hour, containing: Self.utc(2026, 12, 7, 10, 10))
        #expect(window == QuotaWindow(start: Self.utc(2026, 12, 7, 9, 30), end: Self.utc(2026, 12, 7, 10, 30)))
    }

    @Test func anUnknownZoneIsRefused() {
        #expect(QuotaCalendar(timeZone: "Mars/Olympus_Mons") == nil)
    }

    @Test func theCountStopsAtTheQuotaAndStartsAgainWithTheNextPeriod() {
        let policy = QuotaPolicy(requests: 3, period: .day, calendar: utc)
        var usage = QuotaPolicy.Usage()
        let evening = Self.utc(2026, 12, 7, 23, 59, 0)
        let today = utc.window(of: .day, containing: evening)
        var decisions: [RateLimitDecision] = []
        for _ in 0..<4 {
            let (next, decision) = policy.take(usage, now: evening, window: today)
            usage = next
            decisions.append(decision)
        }
        #expect(decisions.map(\.allowed) == [true, true, true, false])
        #expect(decisions.map(\.remaining) == [2, 1, 0, 0])
        #expect(decisions[3].retryAfterSeconds == 60 && decisions[3].resetSeconds == 60, "until midnight")
        let midnight = Self.utc(2026, 12, 8)
        let (_, tomorrow) = policy.take(usage, now: midnight, window: utc.window(of: .day, containing: midnight))
        #expect(tomorrow.allowed && tomorrow.remaining == 2)
    }

    @Test func usageFitsInOneWordAndBack() {
        let usage = QuotaPolicy.Usage(windowStart: Self.utc(2026, 12, 1, 4, 45), count: 4_000_000_000)
        #expect(QuotaPolicy.Usage(packed: usage.packed) == usage)
        #expect(QuotaPolicy.Usage(packed: 0) == QuotaPolicy.Usage(), "the initial word is an unused quota")
    }
}
