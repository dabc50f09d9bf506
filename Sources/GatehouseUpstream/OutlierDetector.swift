/// A DestinationRule's `outlierDetection`, with Istio's defaults for what it leaves unset.
public struct OutlierPolicy: Sendable, Equatable {
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
/// consecutive 5xx and consecutive gateway errors eject an endpoint at once (not at the next sweep), for
/// `baseEjectionTime` × its ejection count, capped at `maxEjectionTime`; each sweep (every `interval`)
/// returns the endpoints whose time is up and forgives a healthy endpoint one past ejection.
///
/// Pure: the shell reports each try's result and calls `sweep` on a timer; events come back for logs and
/// metrics. Endpoints are indices into the cluster's endpoint list.
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
        /// Grows with each ejection, shrinks by one per sweep that finds the endpoint in service.
        var ejections = 0
        var ejectedUntil: MonotonicInstant?
    }

    public let policy: OutlierPolicy
    private var endpoints: [EndpointHealth]
    public private(set) var ejectedCount = 0

    public init(policy: OutlierPolicy, endpoints: Int) {
        self.policy = policy
        self.endpoints = Array(repeating: EndpointHealth(), count: endpoints)
    }

    public var endpointCount: Int { endpoints.count }

    public func isEjected(_ endpoint: Int) -> Bool { endpoints[endpoint].ejectedUntil != nil }

    /// Too few endpoints are healthy (`minHealthPercent`): the load balancer should use them all.
    public var isPanicking: Bool {
        (endpoints.count - ejectedCount) * 100 < policy.minHealthPercent * endpoints.count
    }

    /// Counts a try's result against `endpoint`; an ejection (or a skipped one) is returned.
    public mutating func record(_ result: UpstreamResult, endpoint: Int, now: MonotonicInstant) -> Event? {
        // A try that was already under way when its endpoint was ejected changes nothing.
        guard endpoints[endpoint].ejectedUntil == nil else { return nil }
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
            return nil
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
            return nil
        }
        // The run is spent whether or not the endpoint can be ejected: the next ejection needs a new one.
        endpoints[endpoint].consecutive5xx = 0
        endpoints[endpoint].consecutiveGatewayErrors = 0
        let allowed = ejectedCount == 0 || (ejectedCount + 1) * 100 <= policy.maxEjectionPercent * endpoints.count
        guard allowed else { return .ejectionSkipped(endpoint: endpoint, reason: reason) }
        // The count stops growing once the time reaches its cap, so that a recovered endpoint is
        // forgiven in as many sweeps as it took to reach the cap (Envoy's backoff).
        if policy.baseEjectionTime * endpoints[endpoint].ejections < ejectionTimeCap { endpoints[endpoint].ejections += 1 }
        let duration = min(policy.baseEjectionTime * endpoints[endpoint].ejections, ejectionTimeCap)
        endpoints[endpoint].ejectedUntil = now + duration
        ejectedCount += 1
        return .ejected(endpoint: endpoint, duration: duration, reason: reason)
    }

    /// The periodic pass (every `policy.interval`): returns the endpoints whose ejection is over, and
    /// takes one past ejection off each endpoint found in service.
    public mutating func sweep(now: MonotonicInstant) -> [Event] {
        var events: [Event] = []
        for index in endpoints.indices {
            if let until = endpoints[index].ejectedUntil {
                guard now >= until else { continue }
                endpoints[index].ejectedUntil = nil
                ejectedCount -= 1
                events.append(.returned(endpoint: index))
            } else if endpoints[index].ejections > 0 {
                endpoints[index].ejections -= 1
            }
        }
        return events
    }

    /// `maxEjectionTime`, or the base time when that is longer.
    private var ejectionTimeCap: Duration { max(policy.maxEjectionTime, policy.baseEjectionTime) }
}
