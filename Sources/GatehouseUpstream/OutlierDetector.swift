/// A DestinationRule's `outlierDetection`, with Istio's defaults for what it leaves unset.
public struct OutlierPolicy: Sendable, Hashable {
    /// 5xx responses in a row (local-origin failures count too) before an ejection; 0 turns it off.
    public var consecutive5xxErrors: Int
    /// 502, 503 and 504 responses in a row (local-origin failures count too); 0, Istio's default, turns
    /// it off.
    public var consecutiveGatewayErrors: Int
    /// How often ejected endpoints are considered for return, and healthy ones forgiven one ejection.
    public var interval: Duration
    /// An ejection lasts this times the endpoint's ejection count.
    public var baseEjectionTime: Duration
    /// Envoy's `max_ejection_time`, which Istio does not expose: 300 s, or the base time when longer.
    public var maxEjectionTime: Duration
    /// At most this share of the endpoints is ejected at once, though one endpoint always can be.
    public var maxEjectionPercent: Int
    /// Below this share of healthy endpoints, ejections are ignored and every endpoint takes traffic
    /// (Envoy's panic threshold); 0, Istio's default, never does.
    public var minHealthPercent: Int

    public init(consecutive5xxErrors: Int = 5, consecutiveGatewayErrors: Int = 0, interval: Duration = .seconds(10),
                baseEjectionTime: Duration = .seconds(30), maxEjectionTime: Duration = .seconds(300),
                maxEjectionPercent: Int = 10, minHealthPercent: Int = 0) {
        self.consecutive5xxErrors = consecutive5xxErrors
        self.consecutiveGatewayErrors = consecutiveGatewayErrors
        self.interval = interval
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionTime = maxEjectionTime
        self.maxEjectionPercent = maxEjectionPercent
        self.minHealthPercent = minHealthPercent
    }
}

/// How one try on an endpoint ended, as outlier detection counts it.
public enum UpstreamResult: Sendable, Equatable {
    case response(status: Int)
    /// No response: connect failure, reset, timeout. Istio does not split local-origin errors from
    /// responses, so Envoy counts these as both a 5xx and a gateway error.
    case localOriginFailure
}

/// Passive health of one cluster's endpoints, as Envoy's outlier detector keeps it for Istio's fields:
/// consecutive 5xx and consecutive gateway errors eject an endpoint at once, for `baseEjectionTime` ×
/// its ejection count (capped at `maxEjectionTime`). Envoy sweeps every `interval`: a sweep returns the
/// endpoints whose time is up and forgives each endpoint in service one past ejection. Here the sweeps
/// are computed rather than run: an ejection ends at the first sweep instant after its time, and the
/// forgiveness is the number of sweep instants since the endpoint returned. So nothing needs a timer,
/// and a detector consulted only when traffic comes behaves as one swept on time.
///
/// Pure: the shell reports each try's result and calls `refresh` before it chooses; events come back
/// for logs and metrics. Endpoints are indices into the cluster's endpoint list.
public struct OutlierDetector: Sendable {
    public enum Reason: String, Sendable {
        case consecutive5xx = "consecutive_5xx"
        case consecutiveGatewayErrors = "consecutive_gateway_failure"
    }

    public enum Event: Sendable, Equatable {
        case ejected(endpoint: Int, duration: Duration, reason: Reason)
        /// The endpoint was an outlier, but `maxEjectionPercent` was reached.
        case ejectionSkipped(endpoint: Int, reason: Reason)
        case returned(endpoint: Int)
    }

    struct EndpointHealth: Sendable {
        var consecutive5xx = 0
        var consecutiveGatewayErrors = 0
        /// The ejection count as of `returnedAt` (it shrinks by one per sweep after that).
        var ejections = 0
        /// The sweep instant that ends the current ejection.
        var ejectedUntil: MonotonicInstant?
        /// The sweep instant the endpoint last came back at.
        var returnedAt: MonotonicInstant?
    }

    public let policy: OutlierPolicy
    /// Sweeps fall at `origin` + n × `interval`, n ≥ 1.
    private let origin: MonotonicInstant
    private var endpoints: [EndpointHealth]
    private var earliestReturn: MonotonicInstant?
    public private(set) var ejectedCount = 0

    public init(policy: OutlierPolicy, endpoints: Int, now: MonotonicInstant) {
        self.policy = policy
        origin = now
        self.endpoints = Array(repeating: EndpointHealth(), count: endpoints)
    }

    public var endpointCount: Int { endpoints.count }

    /// As of the last `refresh` or `record`.
    public func isEjected(_ endpoint: Int) -> Bool { endpoints[endpoint].ejectedUntil != nil }

    /// Too few endpoints are healthy (`minHealthPercent`): the load balancer should use them all.
    public var isPanicking: Bool {
        (endpoints.count - ejectedCount) * 100 < policy.minHealthPercent * endpoints.count
    }

    /// Brings the endpoints whose ejection ended by `now` back. Cheap when none is due.
    public mutating func refresh(now: MonotonicInstant) -> [Event] {
        guard let due = earliestReturn, now >= due else { return [] }
        var events: [Event] = []
        var next: MonotonicInstant?
        for index in endpoints.indices {
            guard let until = endpoints[index].ejectedUntil else { continue }
            if now >= until {
                endpoints[index].ejectedUntil = nil
                endpoints[index].returnedAt = until
                ejectedCount -= 1
                events.append(.returned(endpoint: index))
            } else {
                next = min(next ?? until, until)
            }
        }
        earliestReturn = next
        return events
    }

    /// Counts a try's result against `endpoint`. Returns what changed: endpoints back in service, and
    /// this one's ejection (or the ejection `maxEjectionPercent` refused).
    public mutating func record(_ result: UpstreamResult, endpoint: Int, now: MonotonicInstant) -> [Event] {
        var events = refresh(now: now)
        // A try that was already under way when its endpoint was ejected changes nothing.
        guard endpoints[endpoint].ejectedUntil == nil else { return events }
        let isServerError: Bool
        let isGatewayError: Bool
        switch result {
        case .localOriginFailure:
            isServerError = true
            isGatewayError = true
        case .response(let status):
            isServerError = (500...599).contains(status)
            isGatewayError = status == 502 || status == 503 || status == 504
        }
        guard isServerError else {
            endpoints[endpoint].consecutive5xx = 0
            endpoints[endpoint].consecutiveGatewayErrors = 0
            return events
        }
        endpoints[endpoint].consecutive5xx += 1
        endpoints[endpoint].consecutiveGatewayErrors = isGatewayError ? endpoints[endpoint].consecutiveGatewayErrors + 1 : 0
        // Gateway errors are checked first, as Envoy does; one result ejects at most once.
        let reason: Reason
        if policy.consecutiveGatewayErrors > 0, endpoints[endpoint].consecutiveGatewayErrors >= policy.consecutiveGatewayErrors {
            reason = .consecutiveGatewayErrors
        } else if policy.consecutive5xxErrors > 0, endpoints[endpoint].consecutive5xx >= policy.consecutive5xxErrors {
            reason = .consecutive5xx
        } else {
            return events
        }
        // The run is spent whether or not the endpoint can be ejected: the next ejection needs a new one.
        endpoints[endpoint].consecutive5xx = 0
        endpoints[endpoint].consecutiveGatewayErrors = 0
        let allowed = ejectedCount == 0 || (ejectedCount + 1) * 100 <= policy.maxEjectionPercent * endpoints.count
        guard allowed else {
            events.append(.ejectionSkipped(endpoint: endpoint, reason: reason))
            return events
        }
        var count = endpoints[endpoint].ejections
        if let returned = endpoints[endpoint].returnedAt { count = max(0, count - sweeps(after: returned, through: now)) }
        // The count stops growing once the time reaches its cap, so that a recovered endpoint is
        // forgiven in as many sweeps as it took to reach the cap (Envoy's backoff).
        if policy.baseEjectionTime * count < ejectionTimeCap { count += 1 }
        let duration = min(policy.baseEjectionTime * count, ejectionTimeCap)
        let until = sweep(atOrAfter: now + duration)
        endpoints[endpoint].ejections = count
        endpoints[endpoint].ejectedUntil = until
        earliestReturn = min(earliestReturn ?? until, until)
        ejectedCount += 1
        events.append(.ejected(endpoint: endpoint, duration: duration, reason: reason))
        return events
    }

    /// `maxEjectionTime`, or the base time when that is longer.
    private var ejectionTimeCap: Duration { max(policy.maxEjectionTime, policy.baseEjectionTime) }

    private var intervalNanoseconds: Int64 { max(policy.interval.wholeNanoseconds, 1) }

    /// The first sweep instant at or after `instant`.
    private func sweep(atOrAfter instant: MonotonicInstant) -> MonotonicInstant {
        let elapsed = instant.nanoseconds - origin.nanoseconds
        let rounds = max(1, (elapsed + intervalNanoseconds - 1) / intervalNanoseconds)
        return MonotonicInstant(nanoseconds: origin.nanoseconds + rounds * intervalNanoseconds)
    }

    /// How many sweep instants fall in (`start`, `end`].
    private func sweeps(after start: MonotonicInstant, through end: MonotonicInstant) -> Int {
        guard end > start else { return 0 }
        let first = (start.nanoseconds - origin.nanoseconds) / intervalNanoseconds
        let last = (end.nanoseconds - origin.nanoseconds) / intervalNanoseconds
        return Int(last - first)
    }
}
