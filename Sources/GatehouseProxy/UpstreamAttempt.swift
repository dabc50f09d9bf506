import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore
import NIOHPACK

/// One try at sending a request upstream: a pooled HTTP/1.1 connection or a stream on a shared HTTP/2
/// connection. It knows how its protocol frames the request and what to do with its connection when the
/// exchange ends; the exchange (`ProxyExchange` and its `UpstreamExchangeState`) decides when. Responses
/// come back through the `UpstreamResponseReceiver` the attempt was opened for. Retries and per-try
/// timeouts compose attempts; nothing here knows about them.
protocol UpstreamAttempt: AnyObject {
    /// Whether the connection served a request before (a reused connection may have been closed by the
    /// upstream while idle: the one failure that is safe to retry).
    var reused: Bool { get }
    var localAddress: String? { get }
    var isWritable: Bool { get }
    /// Whether a 101 can turn this attempt into a byte tunnel.
    var canTunnel: Bool { get }

    func sendHead()
    /// Request body as the client sent it; the attempt frames it for its protocol.
    func sendBody(_ body: ByteBuffer)
    func sendEnd(trailers: HTTPHeaderBlock?)
    func flush()
    func pauseReads()
    func resumeReads()

    /// After a 101: bytes pass through untouched from now on.
    func startTunnel()
    func sendTunnelBytes(_ bytes: ByteBuffer)
    /// The client ended its side of a tunnel.
    func closeOutput()

    /// The exchange completed: keep the connection for another request when `reusable`, else close it.
    func complete(reusable: Bool)
    /// The exchange ended abnormally: its state on the wire is unknown, so never reuse it.
    func close()
}

/// A request on a pooled HTTP/1.1 connection, which it has to itself until `complete` or `close`.
final class HTTP1Attempt: UpstreamAttempt {
    private let connection: UpstreamConnection
    private let pool: ConnectionPool
    private let head: ByteBuffer
    private let framing: HTTP1BodyFraming
    private let maxRequestsPerConnection: Int
    /// `maxConnectionDuration`: a connection older than this is closed rather than pooled.
    private let maxConnectionAge: TimeAmount?
    private let metrics: GatewayMetrics
    let reused: Bool

    init(lease: ConnectionPool.Lease, pool: ConnectionPool, head: ByteBuffer, framing: HTTP1BodyFraming,
         isHEAD: Bool, maxRequestsPerConnection: Int, maxConnectionAge: TimeAmount? = nil,
         receiver: UpstreamResponseReceiver, metrics: GatewayMetrics) {
        connection = lease.connection
        reused = lease.reused
        self.pool = pool
        self.head = head
        self.framing = framing
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.maxConnectionAge = maxConnectionAge
        self.metrics = metrics
        connection.attach(receiver, requestIsHEAD: isHEAD)
        connection.requestsServed += 1
    }

    var localAddress: String? { connection.localAddress }
    var isWritable: Bool { connection.isWritable }
    var canTunnel: Bool { true }

    func sendHead() { connection.write(head) }

    func sendBody(_ body: ByteBuffer) {
        guard framing == .chunked else { return connection.write(body) }
        var header = ByteBuffer()
        HTTP1Encoder.writeChunkHeader(size: body.readableBytes, into: &header)
        connection.write(header)
        connection.write(body)
        connection.write(ByteBuffer(staticString: "\r\n"))
    }

    func sendEnd(trailers: HTTPHeaderBlock?) {
        // A Content-Length body ends by its length; only chunked framing has an end of its own.
        guard framing == .chunked else { return }
        var last = ByteBuffer()
        metrics.record(.invalidField, count: HTTP1Encoder.writeLastChunk(trailers: trailers, into: &last))
        connection.write(last)
    }

    func flush() { connection.flush() }
    func pauseReads() { connection.pauseReads() }
    func resumeReads() { connection.resumeReads() }

    func startTunnel() { connection.startTunnel() }

    func sendTunnelBytes(_ bytes: ByteBuffer) {
        connection.write(bytes)
        connection.flush()
    }

    func closeOutput() { connection.closeOutput() }

    func complete(reusable: Bool) {
        let underLimit = maxRequestsPerConnection == 0 || connection.requestsServed < maxRequestsPerConnection
        let young = maxConnectionAge.map { NIODeadline.now() - connection.createdAt < $0 } ?? true
        if reusable, underLimit, young { pool.release(connection) } else { close() }
    }

    func close() {
        connection.detach()
        connection.close()
    }
}

/// A request as one stream of a shared HTTP/2 connection; ending it leaves the connection to the others.
final class HTTP2Attempt: UpstreamAttempt {
    private let stream: HTTP2UpstreamStream
    private let fields: HPACKHeaders
    private let bodyless: Bool
    let localAddress: String?

    init(stream: HTTP2UpstreamStream, fields: HPACKHeaders, bodyless: Bool, localAddress: String?) {
        self.stream = stream
        self.fields = fields
        self.bodyless = bodyless
        self.localAddress = localAddress
    }

    /// A new stream is never "reused" in the pool's sense: a stream refused by a closing connection fails
    /// the connect, not the request.
    var reused: Bool { false }
    var isWritable: Bool { stream.isWritable }
    var canTunnel: Bool { false }

    func sendHead() { stream.write(.headers(.init(headers: fields, endStream: bodyless))) }

    func sendBody(_ body: ByteBuffer) { stream.write(.data(.init(data: .byteBuffer(body)))) }

    func sendEnd(trailers: HTTPHeaderBlock?) {
        // A bodyless request ended with its HEADERS.
        guard !bodyless else { return }
        if let trailers, !trailers.isEmpty {
            stream.write(.headers(.init(headers: trailers.http2Trailers, endStream: true)))
        } else {
            stream.write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        }
    }

    func flush() { stream.flush() }
    func pauseReads() { stream.pauseReads() }
    func resumeReads() { stream.resumeReads() }

    func startTunnel() {}
    func sendTunnelBytes(_ bytes: ByteBuffer) {}
    func closeOutput() {}

    /// A stream closes by itself once both sides sent END_STREAM; one whose request is still open (the
    /// upstream answered early) is reset, as the rest of the body has nowhere to go.
    func complete(reusable: Bool) {
        if !reusable { stream.close() }
    }

    func close() { stream.close() }
}
