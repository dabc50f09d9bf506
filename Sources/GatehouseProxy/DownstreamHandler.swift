import GatehouseRouting
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOHTTP1

/// Serves one downstream HTTP/1.1 connection: keeps pipelined requests in order, routes each request,
/// answers locally or hands it to a `ProxyExchange`, applies back-pressure by holding `read`, and writes
/// one access-log line per request.
final class DownstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The request currently being answered.
    final class RequestState {
        let head: HTTPRequestHead
        var record: AccessLogRecord
        let startedAt: NIODeadline
        var keepAlive: Bool
        var requestEnded = false
        var responseStarted = false
        var responseEnded = false
        var exchange: ProxyExchange?

        var hasBody: Bool {
            head.headers.contains(name: "transfer-encoding")
                || (head.headers.first(name: "content-length").map { $0 != "0" } ?? false)
        }

        init(head: HTTPRequestHead, record: AccessLogRecord, keepAlive: Bool) {
            self.head = head
            self.record = record
            self.keepAlive = keepAlive
            startedAt = .now()
        }
    }

    let runtime: ProxyRuntime
    let loop: LoopContext
    let listenerPort: Int
    private let headersTimer: RequestHeadersTimer
    private var context: ChannelHandlerContext!
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private(set) var current: RequestState?
    private var readPending = false
    /// Between channelRead and channelReadComplete: writes upstream can wait for the one flush there.
    private(set) var inReadCycle = false
    private var upstreamBlocked = false
    private var closing = false
    private var quiescing = false
    private var localAddress: String?
    private var remoteAddress: String?
    private var remoteIP: String?

    init(runtime: ProxyRuntime, loop: LoopContext, listenerPort: Int, headersTimer: RequestHeadersTimer) {
        self.runtime = runtime
        self.loop = loop
        self.listenerPort = listenerPort
        self.headersTimer = headersTimer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        localAddress = context.channel.localAddress.map(SocketAddressText.describe)
        remoteAddress = context.channel.remoteAddress.map(SocketAddressText.describe)
        remoteIP = context.channel.remoteAddress?.ipAddress
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadCycle = true
        queued.append(unwrapInboundIn(data))
        processQueue()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        current?.exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    private func processQueue() {
        while let part = queued.first, !closing {
            if let current {
                // The next pipelined request waits until this one is answered.
                if current.requestEnded { break }
                queued.removeFirst()
                deliver(part, to: current)
            } else {
                queued.removeFirst()
                if case .head(let head) = part { startRequest(head) }
            }
        }
        resumeReadsIfAllowed()
    }

    private func deliver(_ part: HTTPServerRequestPart, to request: RequestState) {
        switch part {
        case .head:
            break  // cannot happen: a head always starts a new request
        case .body(let body):
            request.record.bytesReceived += body.readableBytes
            request.exchange?.requestBody(body)
        case .end(let trailers):
            request.requestEnded = true
            request.exchange?.requestEnd(trailers)
            if request.responseEnded { completeRequest(request) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let request = current, !request.responseEnded {
            request.exchange?.abandon()
            request.exchange = nil
            request.record.responseFlags = request.record.responseFlags == "-" ? "DC" : request.record.responseFlags
            request.record.connectionTerminationDetails = request.record.connectionTerminationDetails
                ?? "downstream_remote_disconnect"
            if request.record.responseCodeDetails == nil {
                request.record.responseCodeDetails = "downstream_remote_disconnect"
            }
            writeLog(request)
        }
        current = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError {
            guard current?.responseStarted != true else { context.close(promise: nil); return }
            let request = current ?? makeStubRequest()
            let reply: LocalReply = parserError == .headerOverflow ? .headersTooLarge : .badRequest
            sendLocalReply(reply, for: request)
            return
        }
        // I/O errors (reset by peer…): the connection is gone.
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is RequestHeadersTimedOut:
            guard current == nil else { return }
            sendLocalReply(.requestHeadersTimeout, for: makeStubRequest())
        case is ChannelShouldQuiesceEvent:
            quiescing = true
            if let current { current.keepAlive = false } else if queued.isEmpty { closeConnection() }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: outbound (read gating)

    func read(context: ChannelHandlerContext) {
        if shouldHoldReads { readPending = true } else { context.read() }
    }

    private var shouldHoldReads: Bool {
        closing || upstreamBlocked || !queued.isEmpty
    }

    private func resumeReadsIfAllowed() {
        guard readPending, !shouldHoldReads else { return }
        readPending = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { current?.exchange?.downstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: requests

    private func makeStubRequest() -> RequestState {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")
        var record = baseRecord()
        record.method = nil
        record.path = nil
        let request = RequestState(head: head, record: record, keepAlive: false)
        current = request
        return request
    }

    private func baseRecord() -> AccessLogRecord {
        var record = AccessLogRecord()
        record.startTimeMillis = Timestamp.nowMillis()
        record.downstreamLocalAddress = localAddress
        record.downstreamRemoteAddress = remoteAddress
        return record
    }

    private func startRequest(_ head: HTTPRequestHead) {
        headersTimer.headReceived()
        var record = baseRecord()
        record.method = head.method.rawValue
        record.path = head.uri
        record.protocol = head.version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1"
        let summary = RequestHeaderSummary(head.headers)
        record.userAgent = summary.userAgent
        record.xForwardedFor = summary.forwardedFor
        record.authority = summary.host
        let requestID = summary.requestID ?? RequestID.generate(using: &loop.random)
        record.requestID = requestID
        let request = RequestState(head: head, record: record,
                                   keepAlive: head.isKeepAlive && !quiescing && !runtime.isDraining)
        current = request

        let snapshot = runtime.store.snapshot
        let settings = snapshot.settings
        if head.headers.count > settings.maxRequestHeaders {
            sendLocalReply(.headersTooLarge, for: request)
            return
        }
        guard let target = RequestTarget(head: head, host: summary.host, hostCount: summary.hostCount) else {
            sendLocalReply(.badRequest, for: request)
            return
        }
        request.record.authority = target.authority
        guard let listener = snapshot.listener(port: listenerPort) else {
            sendLocalReply(.noRoute, for: request)
            return
        }
        let input = RouteInput(method: head.method.rawValue, path: target.path, query: target.query,
                               scheme: "http", authority: target.authority, port: listenerPort,
                               headers: HTTPHeadersLookup(headers: head.headers))
        guard let (virtualHost, selection) = listener.routes.select(input) else {
            sendLocalReply(.noRoute, for: request)
            return
        }
        if virtualHost.httpsRedirect {
            let location = RedirectAction(scheme: "https", code: 301).location(for: input)
            sendLocalReply(.redirect(status: 301, location: location), for: request)
            return
        }
        guard let selection else {
            sendLocalReply(.noRoute, for: request)
            return
        }
        let route = selection.route
        request.record.routeName = route.name
        switch route.action {
        case .directResponse(let status, let body):
            sendLocalReply(.direct(status: status, body: body), for: request, route: route)
        case .redirect(let redirect):
            sendLocalReply(.redirect(status: redirect.code, location: redirect.location(for: input)),
                           for: request, route: route)
        case .forward(let forward):
            guard let destination = forward.pick(draw: loop.random.next()),
                  let cluster = snapshot.clusters[destination.cluster] else {
                sendLocalReply(.noHealthyUpstream, for: request)
                return
            }
            request.record.upstreamCluster = cluster.name
            let upstreamHead = UpstreamRequestBuilder.build(
                head: head, target: target, route: route, matched: selection.matched, rewrite: forward.rewrite,
                destination: destination, clientIP: remoteIP, requestID: requestID)
            if summary.expectsContinue {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
            let exchange = ProxyExchange(downstream: self, loop: loop, runtime: runtime, cluster: cluster,
                                         head: upstreamHead,
                                         responseMutations: [destination.responseHeaders, route.responseHeaders],
                                         timeout: route.timeoutNanoseconds.map { .nanoseconds($0) })
            request.exchange = exchange
            exchange.start()
        }
    }

    // MARK: responses (called by the exchange and for local replies)

    func sendLocalReply(_ reply: LocalReply, for request: RequestState, route: Route? = nil) {
        guard !request.responseStarted else {
            abortResponse(flag: reply.flag, details: reply.details)
            return
        }
        // A body we have not read yet would have to be drained first: close instead, as Envoy does.
        if reply.closeConnection || (!request.requestEnded && request.hasBody) { request.keepAlive = false }
        var headers = HTTPHeaders()
        if !reply.body.isEmpty { headers.add(name: "content-type", value: "text/plain") }
        headers.add(name: "content-length", value: String(reply.body.count))
        for (name, value) in reply.extraHeaders { headers.add(name: name, value: value) }
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "server", value: "istio-envoy")
        if let route { headers.apply([route.responseHeaders]) }
        request.record.responseFlags = reply.flag
        request.record.responseCodeDetails = reply.details
        // The exchange holds this handler unowned: it must never call back once it has been dropped.
        request.exchange?.abandon()
        request.exchange = nil
        var body = context.channel.allocator.buffer(capacity: reply.body.count)
        body.writeBytes(reply.body)
        respondHead(HTTPResponseHead(version: request.head.version, status: reply.status, headers: headers))
        if !reply.body.isEmpty { _ = respondBody(body) }
        respondEnd(nil)
    }

    func respondHead(_ head: HTTPResponseHead) {
        guard let request = current else { return }
        var head = head
        head.version = request.head.version
        // HTTP/1.0 has no chunked framing: a body without content-length ends when the connection does.
        if head.version == .http1_0, !head.headers.contains(name: "content-length") { request.keepAlive = false }
        if !request.keepAlive || quiescing || runtime.isDraining {
            request.keepAlive = false
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else if request.head.version == .http1_0 {
            head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        request.responseStarted = true
        request.record.responseCode = Int(head.status.code)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    /// Returns whether the downstream can take more without buffering.
    func respondBody(_ body: ByteBuffer) -> Bool {
        current?.record.bytesSent += body.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        return context.channel.isWritable
    }

    func flushDownstream() { context.flush() }

    func respondEnd(_ trailers: HTTPHeaders?) {
        guard let request = current else { return }
        request.responseEnded = true
        request.exchange = nil
        let keepAlive = request.keepAlive
        if keepAlive {
            // No promise on the common path: a promise and its callback per request show in the profile.
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in channel.close(promise: nil) }
            closing = true
        }
        writeLog(request)
        if request.requestEnded || !keepAlive { completeRequest(request) }
    }

    /// The upstream failed after the response began: HTTP/1.1 can only signal that by closing.
    func abortResponse(flag: String, details: String) {
        guard let request = current else { return }
        request.record.responseFlags = flag
        request.record.responseCodeDetails = details
        request.responseEnded = true
        request.exchange?.abandon()
        request.exchange = nil
        writeLog(request)
        closeConnection()
    }

    func updateRecord(_ update: (inout AccessLogRecord) -> Void) {
        guard let request = current else { return }
        update(&request.record)
    }

    func setUpstreamBlocked(_ blocked: Bool) {
        upstreamBlocked = blocked
        if !blocked { resumeReadsIfAllowed() }
    }

    private func completeRequest(_ request: RequestState) {
        guard current === request else { return }
        current = nil
        upstreamBlocked = false
        if closing { return }
        if quiescing, queued.isEmpty { closeConnection(); return }
        headersTimer.awaitNextRequest()
        processQueue()
    }

    private func writeLog(_ request: RequestState) {
        request.record.durationMillis = (NIODeadline.now() - request.startedAt).nanoseconds / 1_000_000
        runtime.log(request.record, on: loop)
    }

    private func closeConnection() {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }

}

extension HTTPHeaders {
    /// Applies Istio header operations (`headers.request|response`) in the order given.
    mutating func apply(_ mutations: [HeaderMutation]) {
        for mutation in mutations where !mutation.isEmpty {
            mutation.apply(remove: { remove(name: $0) },
                           replace: { replaceOrAdd(name: $0, value: $1) },
                           append: { add(name: $0, value: $1) })
        }
    }
}

/// `HeaderLookup` over NIO's headers, so the router reads them in place.
struct HTTPHeadersLookup: HeaderLookup {
    let headers: HTTPHeaders
    func values(_ name: String) -> [String] { headers[name] }
}
