import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore

/// The client side of an exchange: an HTTP/1.1 connection or an HTTP/2 stream. Everything runs on the
/// event loop both share with the upstream connection.
protocol DownstreamResponder: AnyObject {
    /// Whether this side can become a byte tunnel after a 101 (HTTP/1.1 connections, and HTTP/2 streams
    /// opened by an extended CONNECT).
    var canTunnel: Bool { get }
    /// The 101 is written: from now on the client's bytes go to `ProxyExchange.tunnelToUpstream`.
    func startTunnel()
    /// Tunnel bytes for the client. Returns whether it can take more without buffering.
    func tunnelToClient(_ bytes: ByteBuffer) -> Bool
    /// The upstream side of the tunnel closed: close the client side and log the tunnel.
    func tunnelClosed()
    /// Inside a read of the client's bytes: writes upstream may wait for the flush at its end.
    var inReadCycle: Bool { get }
    /// `framing` is how the body arrives from the upstream; `bodyBytes` are written with the head.
    func respondHead(status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming, bodyBytes: [UInt8])
    /// Returns whether the client side can take more without buffering.
    func respondBody(_ body: ByteBuffer) -> Bool
    func flushDownstream()
    func respondEnd(_ trailers: HTTPHeaderBlock?)
    /// The upstream failed after the response began: end the response abnormally.
    func abortResponse(flag: ResponseFlags, details: String)
    func updateRecord(_ update: (inout AccessLogRecord) -> Void)
    /// Hold (or resume) reading the request body.
    func setUpstreamBlocked(_ blocked: Bool)
    /// Answer the current request locally (the exchange failed before the response began).
    func sendLocalReplyForCurrent(_ reply: LocalReply)
}

extension DownstreamHandler {
    func sendLocalReplyForCurrent(_ reply: LocalReply) {
        guard let request = current else { return }
        setUpstreamBlocked(false)
        sendLocalReply(reply, for: request)
    }
}
