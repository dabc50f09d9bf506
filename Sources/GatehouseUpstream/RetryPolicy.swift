/// A route's retry policy as Envoy runs it for Istio's `retries`: how many retries, on which results,
/// how long each try may wait for its response, how long to back off between tries, and whether a
/// retry avoids the hosts already tried. Pure: the decisions take the result and a random draw.
public struct RetryPolicy: Sendable, Equatable {
    /// Envoy's `retry_on` conditions.
    public struct Conditions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Any 5xx response, and every result without a response (connect failure, reset, per-try timeout).
        public static let fiveXX = Conditions(rawValue: 1 << 0)
        /// 502, 503 and 504 responses, and every result without a response.
        public static let gatewayError = Conditions(rawValue: 1 << 1)
        /// Every result without a response.
        public static let reset = Conditions(rawValue: 1 << 2)
        /// A failure before the request left the gateway: the connection could not be made.
        public static let resetBeforeRequest = Conditions(rawValue: 1 << 3)
        public static let connectFailure = Conditions(rawValue: 1 << 4)
        /// 409 responses.
        public static let retriable4xx = Conditions(rawValue: 1 << 5)
        /// An HTTP/2 stream the upstream refused (REFUSED_STREAM): it processed nothing.
        public static let refusedStream = Conditions(rawValue: 1 << 6)
        /// The statuses in `statusCodes`.
        public static let retriableStatusCodes = Conditions(rawValue: 1 << 7)
        /// A response carrying `x-envoy-ratelimited`.
        public static let envoyRateLimited = Conditions(rawValue: 1 << 8)
        /// gRPC statuses in the response headers (a trailers-only response).
        public static let grpcCancelled = Conditions(rawValue: 1 << 9)
        public static let grpcDeadlineExceeded = Conditions(rawValue: 1 << 10)
        public static let grpcInternal = Conditions(rawValue: 1 << 11)
        public static let grpcResourceExhausted = Conditions(rawValue: 1 << 12)
        public static let grpcUnavailable = Conditions(rawValue: 1 << 13)

        static let anyGRPC: Conditions = [.grpcCancelled, .grpcDeadlineExceeded, .grpcInternal, .grpcResourceExhausted,
                                          .grpcUnavailable]
    }

    /// How one try ended, as far as retrying is concerned.
    public enum TryResult: Sendable, Equatable {
        /// A response head: its status, the `grpc-status` it carries (trailers-only gRPC responses),
        /// and whether it has `x-envoy-ratelimited`.
        case response(status: Int, grpcStatus: Int?, rateLimited: Bool)
        /// The connection (TCP or TLS) could not be made; nothing was sent.
        case connectFailure
        /// The upstream refused the HTTP/2 stream.
        case refusedStream
        /// The connection or stream closed, reset or broke HTTP before a response head.
        case reset
        /// The try's `perTryTimeout` fired before a response head.
        case perTryTimeout
    }

    /// Retries after the first try (Istio's `attempts`).
    public var retries: Int
    public var conditions: Conditions
    /// `retriable-status-codes`: bare status codes in `retryOn` (Istio's default: 503).
    public var statusCodes: [Int]
    /// `perTryTimeout`: nil, each try may take until the route timeout.
    public var perTryTimeoutNanoseconds: Int64?
    /// `backoff`: the base interval of Envoy's jittered exponential back-off (25 ms unless set).
    public var backoffBaseNanoseconds: Int64
    /// `retryIgnorePreviousHosts` (Envoy's `previous_hosts` predicate): a retry prefers an endpoint not
    /// tried yet. nil is Istio's default: on, unless the destination balances by consistent hash (a
    /// retry then stays with the hashed endpoint).
    public var avoidsPreviousHosts: Bool?
    /// `retryRemoteLocalities` (Envoy's `previous_priorities`): a retry passes over the locality
    /// priorities already tried.
    public var avoidsPreviousPriorities = false

    public static let defaultBackoffBaseNanoseconds: Int64 = 25_000_000

    public init(retries: Int, conditions: Conditions, statusCodes: [Int] = [], perTryTimeoutNanoseconds: Int64? = nil,
                backoffBaseNanoseconds: Int64 = RetryPolicy.defaultBackoffBaseNanoseconds, avoidsPreviousHosts: Bool? = nil) {
        self.retries = retries
        self.conditions = conditions
        self.statusCodes = statusCodes
        self.perTryTimeoutNanoseconds = perTryTimeoutNanoseconds
        self.backoffBaseNanoseconds = backoffBaseNanoseconds
        self.avoidsPreviousHosts = avoidsPreviousHosts
    }

    /// What Istio gives a route that writes no `retries`: 2 retries on connect failures, refused streams,
    /// gRPC UNAVAILABLE and CANCELLED, and 503, each to another endpoint when there is one.
    public static let istioDefault = RetryPolicy(
        retries: 2, conditions: [.connectFailure, .refusedStream, .grpcUnavailable, .grpcCancelled, .retriableStatusCodes],
        statusCodes: [503])

    /// Whether a retry to a cluster that does (or does not) balance by consistent hash avoids the
    /// endpoints already tried.
    public func avoidsPreviousHosts(consistentHash: Bool) -> Bool { avoidsPreviousHosts ?? !consistentHash }

    /// Whether a try that ended with `result` is worth another (retries left or not).
    public func retries(_ result: TryResult) -> Bool {
        switch result {
        case .response(let status, let grpcStatus, let rateLimited):
            if conditions.contains(.fiveXX), status >= 500, status < 600 { return true }
            if conditions.contains(.gatewayError), status == 502 || status == 503 || status == 504 { return true }
            if conditions.contains(.retriable4xx), status == 409 { return true }
            if conditions.contains(.retriableStatusCodes), statusCodes.contains(status) { return true }
            if conditions.contains(.envoyRateLimited), rateLimited { return true }
            if let grpcStatus, !conditions.isDisjoint(with: Self.Conditions.anyGRPC) {
                switch grpcStatus {
                case 1: return conditions.contains(.grpcCancelled)
                case 4: return conditions.contains(.grpcDeadlineExceeded)
                case 8: return conditions.contains(.grpcResourceExhausted)
                case 13: return conditions.contains(.grpcInternal)
                case 14: return conditions.contains(.grpcUnavailable)
                default: return false
                }
            }
            return false
        case .connectFailure:
            return !conditions.isDisjoint(with: [.fiveXX, .gatewayError, .reset, .resetBeforeRequest, .connectFailure])
        case .refusedStream:
            return !conditions.isDisjoint(with: [.fiveXX, .gatewayError, .reset, .refusedStream])
        case .reset, .perTryTimeout:
            return !conditions.isDisjoint(with: [.fiveXX, .gatewayError, .reset])
        }
    }

    /// Whether a response's `grpc-status` can matter: the header is read only then.
    public var readsGRPCStatus: Bool { !conditions.isDisjoint(with: Self.Conditions.anyGRPC) }

    /// Envoy's jittered exponential back-off before retry `number` (1 for the first): a draw in
    /// [0, (2^number - 1) × base), then capped at 10 × base, as Envoy's JitteredExponentialBackOffStrategy.
    public func backoffNanoseconds(retry number: Int, draw: UInt64) -> Int64 {
        guard backoffBaseNanoseconds > 0 else { return 0 }
        let cap = backoffBaseNanoseconds * 10
        let multiplier = (Int64(1) << Int64(min(max(number, 1), 20))) - 1
        let (span, overflow) = multiplier.multipliedReportingOverflow(by: backoffBaseNanoseconds)
        if overflow { return cap }
        return min(Int64(draw % UInt64(span)), cap)
    }
}

/// One request's retries under its route's policy: how many were made, and what the access log must
/// say of the last decision (Envoy's URX and UO flags).
public struct RetryState: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// Try again; `number` counts retries from 1.
        case retry(number: Int)
        /// The result stands.
        case stop
    }

    public let policy: RetryPolicy?
    public private(set) var retriesMade = 0
    /// A result the policy retries came when no retry was left (URX).
    public private(set) var limitReached = false
    /// A retry was refused by the cluster's `maxRetries` circuit breaker (UO).
    public private(set) var overflowed = false

    public init(policy: RetryPolicy?) {
        self.policy = policy.flatMap { $0.retries > 0 ? $0 : nil }
    }

    /// Whether a later result could still be retried: while it can, the request body is kept for replay.
    public var canStillRetry: Bool {
        guard let policy else { return false }
        return retriesMade < policy.retries
    }

    /// Decides on a try that ended with `result`. `replayable`: the request can be sent again whole (its
    /// body was small enough to keep); Envoy gives up retrying a request it could not buffer, with no
    /// flag. `claimRetry` asks the cluster's circuit breaker for a retry slot, only when all else agrees.
    public mutating func decide(_ result: RetryPolicy.TryResult, replayable: Bool, claimRetry: () -> Bool) -> Decision {
        guard let policy, policy.retries(result), replayable else { return .stop }
        guard retriesMade < policy.retries else {
            limitReached = true
            return .stop
        }
        guard claimRetry() else {
            overflowed = true
            return .stop
        }
        retriesMade += 1
        return .retry(number: retriesMade)
    }
}
