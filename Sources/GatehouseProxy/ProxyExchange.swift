import GatehouseHTTP1
import GatehouseRouting
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOHPACK

/// Forwards one request to one upstream endpoint and streams the response back. Lives on the downstream
/// connection's event loop, as does the pooled upstream connection it uses, so the two sides call each
/// other directly. Reads on each side are held while the other side is not writable (back-pressure);
/// nothing buffers a whole body.
final class ProxyExchange: UpstreamResponseReceiver {
    private unowned let downstream: DownstreamResponder
    private let loop: LoopContext
    private let runtime: ProxyRuntime
    private let cluster: Cluster
    private let snapshotVersion: Int
    private let request: UpstreamRequest
    private let responseMutations: [HeaderMutation]
    private let timeout: TimeAmount?

    private var connection: UpstreamConnection?
    /// The request's stream when the cluster speaks HTTP/2.
    private var stream: HTTP2UpstreamStream?
    /// Body bytes that arrived while (re)connecting, already framed for the upstream.
    private var pending: [ByteBuffer] = []
    private var requestEnded = false
    private var requestTrailers: HTTPHeaderBlock?
    private var sentBody = false
    private var reusedConnection = false
    private var retried = false
    private var responseStarted = false
    private var responseKeepAlive = true
    private var finished = false
    /// The upstream answered a WebSocket upgrade with 101: bytes now flow both ways untouched.
    private var tunneling = false
    private var upstreamStartedAt = NIODeadline.now()
    private var timeoutTask: Scheduled<Void>?
    private var target: UpstreamTarget?

    init(downstream: DownstreamResponder, loop: LoopContext, runtime: ProxyRuntime, forwarding: Dispatch.Forwarding) {
        self.downstream = downstream
        self.loop = loop
        self.runtime = runtime
        cluster = forwarding.cluster
        snapshotVersion = forwarding.snapshotVersion
        request = forwarding.request
        responseMutations = forwarding.responseMutations
        timeout = forwarding.timeout
    }

    // MARK: request side

    func start() {
        guard !cluster.endpoints.isEmpty else { return failLocally(.noHealthyUpstream) }
        let endpointIndex = loop.nextEndpoint(of: cluster, version: snapshotVersion)
        let endpoint = cluster.endpoints[endpointIndex]
        downstream.setUpstreamBlocked(true)
        switch cluster.discovery {
        case .staticAddresses:
            guard let target = loop.upstreamTarget(of: cluster, endpoint: endpointIndex, version: snapshotVersion) else {
                return failLocally(.noHealthyUpstream)
            }
            connect(to: target)
        case .dns:
            runtime.dns.resolve(host: endpoint.address, port: endpoint.port, on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
                guard !finished else { return }
                switch result {
                case .success(let addresses):
                    let index = loop.nextResolved(of: cluster, endpoint: endpointIndex, count: addresses.count,
                                                  version: snapshotVersion)
                    connect(to: loop.upstreamTarget(of: cluster, resolved: addresses[index]))
                case .failure:
                    downstream.updateRecord { $0.upstreamTransportFailureReason = "dns_resolution_failure" }
                    failLocally(.noHealthyUpstream)
                }
            }
        case .kubernetesService:
            runtime.services.resolve(name: endpoint.address, port: endpoint.port,
                                     configured: runtime.store.snapshot.settings.resolverAddresses,
                                     on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
                guard !finished else { return }
                switch result {
                case .success(let addresses) where !addresses.isEmpty:
                    let index = loop.nextResolved(of: cluster, endpoint: endpointIndex, count: addresses.count,
                                                  version: snapshotVersion)
                    connect(to: loop.upstreamTarget(of: cluster, resolved: addresses[index]))
                case .success:
                    failLocally(.noHealthyUpstream)
                case .failure(let error):
                    downstream.updateRecord { $0.upstreamTransportFailureReason = "dns_resolution_failure: \(error)" }
                    failLocally(.noHealthyUpstream)
                }
            }
        }
    }

    private func connect(to target: UpstreamTarget, forceNew: Bool = false) {
        self.target = target
        downstream.updateRecord { $0.upstreamHost = target.text }
        if cluster.http2 { return openStream(to: target) }
        if !forceNew,
           let idle = loop.pool.takeIdle(key: target.poolKey, idleTimeout: .nanoseconds(cluster.idleTimeoutNanoseconds)) {
            return attach(ConnectionPool.Lease(connection: idle, reused: true))
        }
        loop.pool.connect(key: target.poolKey, address: target.address,
                          connectTimeout: .nanoseconds(cluster.connectTimeoutNanoseconds),
                          limits: runtime.upstreamLimits)
            .assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let lease):
                    guard !finished else {
                        lease.connection.close()
                        return
                    }
                    attach(lease)
                case .failure:
                    guard !finished else { return }
                    failLocally(.connectFailure)
                }
            }
    }

    private func openStream(to target: UpstreamTarget) {
        let isHEAD = request.isHEAD
        loop.http2Pool.connection(key: target.poolKey, address: target.address,
                                  connectTimeout: .nanoseconds(cluster.connectTimeoutNanoseconds))
            .assumeIsolated().whenComplete { [self] result in
                guard case .success(let connection) = result else {
                    guard !finished else { return }
                    return failLocally(.connectFailure)
                }
                downstream.updateRecord { $0.upstreamLocalAddress = connection.localAddress }
                connection.openStream(for: self, requestIsHEAD: isHEAD).assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let stream):
                        guard !finished else { return stream.close() }
                        attach(stream)
                    case .failure:
                        guard !finished else { return }
                        failLocally(.connectFailure)
                    }
                }
            }
    }

    private func attach(_ stream: HTTP2UpstreamStream) {
        self.stream = stream
        upstreamStartedAt = .now()
        guard case .http2(let fields) = request.head else { preconditionFailure("an HTTP/2 cluster gets an HTTP/2 head") }
        let bodyless = request.framing == .none
        stream.write(.headers(.init(headers: fields, endStream: bodyless)))
        if !pending.isEmpty {
            sentBody = true
            for bytes in pending { stream.write(.data(.init(data: .byteBuffer(bytes)))) }
            pending.removeAll()
        }
        if requestEnded, !bodyless { writeRequestEnd(to: stream) }
        stream.flush()
        downstream.setUpstreamBlocked(!stream.isWritable)
    }

    private func writeRequestEnd(to stream: HTTP2UpstreamStream) {
        if let trailers = requestTrailers, !trailers.isEmpty {
            stream.write(.headers(.init(headers: trailers.http2Trailers, endStream: true)))
        } else {
            stream.write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        }
    }

    private func attach(_ lease: ConnectionPool.Lease) {
        let connection = lease.connection
        self.connection = connection
        reusedConnection = lease.reused
        connection.attach(self, requestIsHEAD: request.isHEAD)
        connection.requestsServed += 1
        downstream.updateRecord { $0.upstreamLocalAddress = connection.localAddress }
        upstreamStartedAt = .now()
        guard case .http1(let head) = request.head else { preconditionFailure("an HTTP/1.1 cluster gets an HTTP/1.1 head") }
        connection.write(head)
        if !pending.isEmpty {
            sentBody = true
            for bytes in pending { connection.write(bytes) }
            pending.removeAll()
        }
        if requestEnded { writeRequestEnd(to: connection) }
        // Inside the downstream read cycle, channelReadComplete flushes once for everything written.
        if !downstream.inReadCycle { connection.flush() }
        downstream.setUpstreamBlocked(!connection.isWritable)
    }

    func requestBody(_ body: ByteBuffer) {
        guard !finished, body.readableBytes > 0 else { return }
        if let stream {
            sentBody = true
            stream.write(.data(.init(data: .byteBuffer(body))))
            if !stream.isWritable { downstream.setUpstreamBlocked(true) }
            return
        }
        guard let connection else {
            writeFramed(body) { pending.append($0) }
            return
        }
        sentBody = true
        writeFramed(body) { connection.write($0) }
        if !connection.isWritable { downstream.setUpstreamBlocked(true) }
    }

    /// The body as the upstream expects it: as is for Content-Length, one chunk per piece if chunked.
    private func writeFramed(_ body: ByteBuffer, _ write: (ByteBuffer) -> Void) {
        guard request.framing == .chunked, !cluster.http2 else { return write(body) }
        var header = ByteBuffer()
        HTTP1Encoder.writeChunkHeader(size: body.readableBytes, into: &header)
        write(header)
        write(body)
        write(ByteBuffer(staticString: "\r\n"))
    }

    func requestEnd(_ trailers: HTTPHeaderBlock?) {
        guard !finished else { return }
        requestEnded = true
        requestTrailers = trailers.map(withoutProhibitedTrailerFields)
        if let connection {
            writeRequestEnd(to: connection)
            if !downstream.inReadCycle { connection.flush() }
        } else if let stream, request.framing != .none {
            writeRequestEnd(to: stream)
            stream.flush()
        }
        // Envoy's route timeout runs from the end of the request to the end of the response.
        if let timeout {
            timeoutTask = loop.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in self?.timedOut() }
        }
    }

    private func writeRequestEnd(to connection: UpstreamConnection) {
        guard request.framing == .chunked else { return }
        var last = ByteBuffer()
        loop.metrics.record(.invalidField, count: HTTP1Encoder.writeLastChunk(trailers: requestTrailers, into: &last))
        connection.write(last)
    }

    func flushUpstream() {
        connection?.flush()
        stream?.flush()
    }

    func downstreamBecameWritable() {
        connection?.resumeReads()
        stream?.resumeReads()
    }

    /// The downstream side gave up on this exchange (client gone, or the gateway answered locally, e.g. a
    /// malformed body): stop, and close the upstream connection, whose state is now unknown. A no-op once
    /// the exchange has finished on its own.
    func abandon() {
        guard !finished else { return }
        finish()
        // A half-sent exchange leaves the connection in an unknown state: never reuse it. An HTTP/2
        // stream is reset; its connection serves others.
        connection?.detach()
        connection?.close()
        connection = nil
        stream?.close()
        stream = nil
    }

    // MARK: response side

    func upstreamResponseHead(_ response: HTTP1ResponseHead) {
        guard !finished else { return }
        if response.status == 101, !answersForwardedUpgrade(response) {
            // A 101 to a request the gateway did not forward as an upgrade (or for another protocol) would
            // turn the connection into a tunnel nothing checks: everything after it would reach the
            // upstream unrouted and unauthorized. It is a protocol error, and the connection is dropped.
            connection?.detach()
            connection?.close()
            connection = nil
            downstream.updateRecord { $0.upstreamTransportFailureReason = "unexpected_switching_protocols" }
            return failLocally(.upstreamProtocolError)
        }
        responseStarted = true
        responseKeepAlive = response.keepAlive
        let serviceTime = (NIODeadline.now() - upstreamStartedAt).nanoseconds / 1_000_000
        var headers = response.headers
        ForwardingHeaders.prepareDownstreamResponse(&headers, connection: response.connection,
                                                    serviceTimeMillis: serviceTime)
        // Framing toward the client is the gateway's own: the length it keeps is written canonical.
        if let length = ForwardingHeaders.downstreamContentLength(response) { headers.add("content-length", String(length)) }
        headers.apply(responseMutations)
        downstream.updateRecord {
            $0.upstreamServiceTimeMillis = serviceTime
            $0.responseCodeDetails = "via_upstream"
        }
        if let expected = request.expectedWebSocketAccept, response.status < 300 {
            // A bridged upgrade succeeds only with a 101 that answers the gateway's key: a 2xx (or a 101
            // with the wrong accept) would tell the client a WebSocket is open when none is.
            let accepted = response.status == 101 && response.headers.first("sec-websocket-accept") == expected
            guard accepted else {
                connection?.detach()
                connection?.close()
                connection = nil
                downstream.updateRecord { $0.upstreamTransportFailureReason = "websocket_handshake_failed" }
                return failLocally(.upstreamProtocolError)
            }
        }
        if response.status == 101, let upgrade = request.upgrade, let connection {
            headers.add("connection", "upgrade")
            headers.add("upgrade", upgrade)
            tunneling = true
            timeoutTask?.cancel()
            downstream.respondHead(status: 101, headers: headers, framing: .none, bodyBytes: [])
            downstream.startTunnel()
            connection.startTunnel()
            downstream.flushDownstream()
            return
        }
        downstream.respondHead(status: response.status, headers: headers, framing: response.framing, bodyBytes: [])
    }

    /// Whether a 101 switches to what the gateway asked for: a WebSocket upgrade it forwarded on an
    /// HTTP/1.1 connection, from a client side that can tunnel, named in the response's `Upgrade`.
    private func answersForwardedUpgrade(_ response: HTTP1ResponseHead) -> Bool {
        guard let upgrade = request.upgrade, connection != nil, downstream.canTunnel else { return false }
        var named = false
        response.headers.forEachValue(role: .upgrade) { value in
            ASCII.forEachListElement(value) { token in
                if ASCII.equalsIgnoringCase(token, upgrade) { named = true }
            }
        }
        return named
    }

    /// Trailers without the fields RFC 9110 §6.5.1 prohibits there (counted when any were dropped).
    private func withoutProhibitedTrailerFields(_ trailers: HTTPHeaderBlock) -> HTTPHeaderBlock {
        var trailers = trailers
        loop.metrics.record(.prohibitedTrailer, count: trailers.removeProhibitedTrailerFields())
        return trailers
    }

    // MARK: tunnel (WebSocket after 101)

    func upstreamTunnelData(_ bytes: ByteBuffer) {
        guard !finished, tunneling else { return }
        if !downstream.tunnelToClient(bytes) { connection?.pauseReads() }
    }

    /// Bytes from the client once the tunnel is open.
    func tunnelToUpstream(_ bytes: ByteBuffer) {
        guard !finished, tunneling, let connection else { return }
        connection.write(bytes)
        connection.flush()
        if !connection.isWritable { downstream.setUpstreamBlocked(true) }
    }

    /// The client ended its side of the tunnel (HTTP/2 END_STREAM): the upstream sees end of input.
    func tunnelClientEnded() {
        guard !finished, tunneling else { return }
        connection?.closeOutput()
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard !finished else { return }
        if !downstream.respondBody(body) {
            connection?.pauseReads()
            stream?.pauseReads()
        }
    }

    func upstreamReadComplete() {
        guard !finished else { return }
        downstream.flushDownstream()
    }

    func upstreamResponseEnd(_ trailers: HTTPHeaderBlock?) {
        guard !finished, !tunneling else { return }
        finish()
        if let connection {
            self.connection = nil
            let reusable = requestEnded && responseKeepAlive
                && (cluster.maxRequestsPerConnection == 0 || connection.requestsServed < cluster.maxRequestsPerConnection)
            if reusable { loop.pool.release(connection) } else { connection.detach(); connection.close() }
        }
        // An HTTP/2 stream ends by itself once both sides sent END_STREAM (a body the upstream answered
        // early is reset, as the client side has nowhere to send it).
        if let stream, !requestEnded { stream.close() }
        stream = nil
        downstream.respondEnd(trailers.map(withoutProhibitedTrailerFields))
    }

    func upstreamClosed() {
        guard !finished else { return }
        connection = nil
        stream = nil
        if tunneling {
            finish()
            downstream.tunnelClosed()
            return
        }
        if !responseStarted {
            // A pooled connection the upstream closed while idle races with our request: retry once on a
            // new connection when nothing but the head (and end) went out, as that is safe to repeat.
            if reusedConnection, !sentBody, !retried, let target {
                retried = true
                connect(to: target, forceNew: true)
                return
            }
            failLocally(.connectionTermination)
        } else {
            finish()
            downstream.abortResponse(flag: .upstreamConnectionTermination, details: "upstream_reset_after_response_started{connection_termination}")
        }
    }

    func upstreamProtocolError() {
        guard !finished else { return }
        connection = nil
        stream = nil
        if responseStarted {
            finish()
            downstream.abortResponse(flag: .upstreamProtocolError, details: "upstream_reset_after_response_started{protocol_error}")
        } else {
            failLocally(.upstreamProtocolError)
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        guard !finished else { return }
        downstream.setUpstreamBlocked(!isWritable)
    }

    private func timedOut() {
        guard !finished else { return }
        finish()
        connection?.detach()
        connection?.close()
        connection = nil
        stream?.close()
        stream = nil
        if responseStarted {
            downstream.abortResponse(flag: .upstreamRequestTimeout, details: "upstream_response_timeout")
        } else {
            downstream.sendLocalReplyForCurrent(.upstreamTimeout)
        }
    }

    private func failLocally(_ reply: LocalReply) {
        finish()
        downstream.sendLocalReplyForCurrent(reply)
    }

    private func finish() {
        finished = true
        timeoutTask?.cancel()
        timeoutTask = nil
    }
}

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
