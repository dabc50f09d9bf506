import Foundation

/// A `quota` rule's period: an hour, a day or a month of the calendar, in UTC or in a configured time
/// zone. Calendar-aligned, not rolling: a monthly quota starts again at midnight on the 1st, as the
/// bill the operator meters it for does.
public enum QuotaPeriod: String, Sendable, Hashable, CaseIterable {
    case hour = "Hour"
    case day = "Day"
    case month = "Month"

    var component: Calendar.Component {
        switch self {
        case .hour: .hour
        case .day: .day
        case .month: .month
        }
    }
}

/// The calendar the periods are counted in. A day in a zone with daylight saving lasts 23 or 25 hours
/// on the days the clocks change; an hour is always 3,600 seconds.
public struct QuotaCalendar: Sendable, Hashable {
    public let timeZone: TimeZone
    /// The zone as configured (Foundation may name UTC "GMT").
    public let zoneName: String
    private let calendar: Calendar

    /// nil when `identifier` names no time zone (a load error).
    public init?(timeZone identifier: String = "UTC") {
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        timeZone = zone
        zoneName = identifier
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        self.calendar = calendar
    }

    /// The period holding `instant` (seconds since 1970): its first second and the first second after it.
    public func window(of period: QuotaPeriod, containing instant: Int64) -> QuotaWindow {
        let date = Date(timeIntervalSince1970: TimeInterval(instant))
        guard let interval = calendar.dateInterval(of: period.component, for: date) else {
            // Foundation answers for every instant of the Gregorian calendar; a fixed hour is the fallback.
            let start = instant - instant % 3600
            return QuotaWindow(start: start, end: start + 3600)
        }
        return QuotaWindow(start: Int64(interval.start.timeIntervalSince1970.rounded(.down)),
                           end: Int64(interval.end.timeIntervalSince1970.rounded(.down)))
    }

    public static func == (lhs: QuotaCalendar, rhs: QuotaCalendar) -> Bool { lhs.timeZone == rhs.timeZone }
    public func hash(into hasher: inout Hasher) { hasher.combine(timeZone.identifier) }
}

/// One period of a quota, in seconds since 1970: `start` ≤ instant < `end`.
public struct QuotaWindow: Sendable, Hashable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public func contains(_ instant: Int64) -> Bool { instant >= start && instant < end }
}

/// A quota's current period, asked of its calendar once a period rather than once a request (each
/// store keeps one per rule and event loop).
public struct QuotaWindowCache {
    private var window: QuotaWindow?

    public init() {}

    /// The period of `algorithm` holding `now` (wall-clock nanoseconds); nil for a bucket.
    public mutating func window(of algorithm: RateLimitAlgorithm, at now: Int64) -> QuotaWindow? {
        // No binding of the quota: a copy of it would retain its calendar on every request.
        guard case .quota = algorithm else { return nil }
        if let window, window.contains(now / 1_000_000_000) { return window }
        window = algorithm.window(at: now)
        return window
    }
}
