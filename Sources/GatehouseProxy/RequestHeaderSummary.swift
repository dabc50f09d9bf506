import NIOHTTP1

/// The request headers the gateway reads for itself, found in one pass instead of one scan each.
struct RequestHeaderSummary {
    var host: String?
    var hostCount = 0
    var userAgent: String?
    /// The first `x-forwarded-for` as received (for the access log, as Envoy's `%REQ(X-FORWARDED-FOR)%`).
    var forwardedFor: String?
    var requestID: String?
    var expectsContinue = false

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch HeaderName.role(name) {
            case .host:
                hostCount += 1
                if host == nil { host = value }
            case .userAgent: if userAgent == nil { userAgent = value }
            case .forwardedFor: if forwardedFor == nil { forwardedFor = value }
            case .requestID: if requestID == nil, !value.isEmpty { requestID = value }
            case .expect: expectsContinue = value.count == 12 && value.lowercased() == "100-continue"
            default: break
            }
        }
    }
}
