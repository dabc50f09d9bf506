import Foundation

/// Istio's HTTPRetry. Unset on a route means Istio's default policy; `attempts: 0` turns retries off.
public struct HTTPRetry: Decodable, Sendable, Hashable {
    /// The number of retries (not tries).
    public var attempts: Int32?
    public var perTryTimeout: ConfigDuration?
    /// Envoy's `retry_on` conditions, comma-separated; bare HTTP status codes are retriable statuses.
    public var retryOn: String?
    public var retryRemoteLocalities: Bool?
    public var retryIgnorePreviousHosts: Bool?
    /// The base interval of Envoy's back-off between retries (25 ms unless set).
    public var backoff: ConfigDuration?

    /// Whether the route retries nothing.
    public var turnsRetriesOff: Bool { (attempts ?? 0) <= 0 }

    /// `retryOn` split as Istio splits it: a token that is an HTTP status code (one Go's net/http
    /// names) is a retriable status code; every other token is a condition name.
    public static func parseRetryOn(_ text: String) -> (conditions: [String], statusCodes: [Int]) {
        var conditions: [String] = []
        var codes: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let token = part.trimmingCharacters(in: .whitespaces)
            if token.isEmpty { continue }
            if let code = Int(token), knownStatusCodes.contains(code) { codes.append(code) } else { conditions.append(token) }
        }
        return (conditions, codes)
    }

    /// The `retryOn` conditions Gatehouse serves: Envoy's HTTP and gRPC conditions, less
    /// `retriable-headers` (its names would come from a request header) and `http3-post-connect-failure`.
    public enum Condition: String, CaseIterable, Sendable {
        case fiveXX = "5xx"
        case gatewayError = "gateway-error"
        case reset
        case resetBeforeRequest = "reset-before-request"
        case connectFailure = "connect-failure"
        case retriable4xx = "retriable-4xx"
        case refusedStream = "refused-stream"
        case retriableStatusCodes = "retriable-status-codes"
        case envoyRateLimited = "envoy-ratelimited"
        case cancelled
        case deadlineExceeded = "deadline-exceeded"
        case `internal`
        case resourceExhausted = "resource-exhausted"
        case unavailable
    }

    /// The statuses Go's `http.StatusText` names, which Istio takes as status codes in `retryOn`.
    static let knownStatusCodes: Set<Int> = Set(Array(100...103) + Array(200...208) + [226] + Array(300...305) + [307, 308]
        + Array(400...418) + Array(421...426) + [428, 429, 431, 451] + Array(500...508) + [510, 511])
}
