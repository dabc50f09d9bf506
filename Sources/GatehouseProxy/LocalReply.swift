import NIOHTTP1

/// A response the gateway makes itself, with the body, response flag and details Envoy uses for the
/// same situation, so dashboards and greps built for Istio keep working.
struct LocalReply {
    var status: HTTPResponseStatus
    var body: [UInt8]
    var flag: String
    var details: String
    var extraHeaders: [(String, String)] = []
    /// Local replies for protocol errors end the connection.
    var closeConnection = false

    static let noRoute = LocalReply(status: .notFound, body: [], flag: "NR", details: "route_not_found")
    static let noHealthyUpstream = LocalReply(status: .serviceUnavailable, body: Array("no healthy upstream".utf8),
                                              flag: "UH", details: "no_healthy_upstream")
    static let connectFailure = LocalReply(
        status: .serviceUnavailable,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: connection failure".utf8),
        flag: "UF", details: "upstream_reset_before_response_started{connection_failure}")
    static let connectionTermination = LocalReply(
        status: .serviceUnavailable,
        body: Array("upstream connect error or disconnect/reset before headers. reset reason: connection termination".utf8),
        flag: "UC", details: "upstream_reset_before_response_started{connection_termination}")
    static let upstreamTimeout = LocalReply(status: .gatewayTimeout, body: Array("upstream request timeout".utf8),
                                            flag: "UT", details: "upstream_response_timeout")
    static let badRequest = LocalReply(status: .badRequest, body: Array("Bad Request".utf8), flag: "DPE",
                                       details: "http1.codec_error", closeConnection: true)
    static let headersTooLarge = LocalReply(status: .requestHeaderFieldsTooLarge,
                                            body: Array("Request Header Fields Too Large".utf8), flag: "DPE",
                                            details: "http1.headers_too_large", closeConnection: true)
    static let requestHeadersTimeout = LocalReply(status: .requestTimeout, body: Array("request timeout".utf8),
                                                  flag: "-", details: "request_header_timeout", closeConnection: true)

    static func direct(status: Int, body: [UInt8]) -> LocalReply {
        LocalReply(status: HTTPResponseStatus(statusCode: status), body: body, flag: "-", details: "direct_response")
    }

    static func redirect(status: Int, location: String) -> LocalReply {
        LocalReply(status: HTTPResponseStatus(statusCode: status), body: [], flag: "-", details: "redirect",
                   extraHeaders: [("location", location)])
    }
}
