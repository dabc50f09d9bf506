import GatehouseHTTP1
import GatehouseRateLimit
import GatehouseRouting
import GatehouseSnapshot
import GatehouseTelemetry
import GatehouseUpstream
import NIOCore

/// Forwards one request upstream and streams the response back: the I/O shell around
/// `UpstreamExchangeState`, which makes every decision. Each try picks and resolves an endpoint, opens
/// an `UpstreamAttempt` (a pooled HTTP/1.1 connection or an HTTP/2 stream), and carries out what the
/// state machine returns; a retry backs off and starts another try.
///
/// Lives on the downstream connection's event loop, as do the upstream connections it uses, so the two
/// sides call each other directly. Reads on each side are held while the other side is not writable
/// (back-pressure); nothing buffers a whole body.
final class ProxyExchange: UpstreamResponseReceiver {
    /// Unowned: the downstream side owns the exchange and abandons it before it goes, and nothing here
    /// touches it once the state machine says the exchange is over.
    private unowned let downstream: DownstreamResponder
    private let loop: LoopContext
    private let runtime: ProxyRuntime
    private let cluster: Cluster
    private let snapshotVersion: Int
    private let request: UpstreamRequest
    private let responseMutations: [HeaderMutation]
    /// The rate limit the response's `x-ratelimit-*` headers report (nil: none).
    private let rateLimitHeaders: RateLimitDecision?
    private let timeout: TimeAmount?
    private let hashKey: UInt64?
    /// VirtualService `fault.delay` this request drew; the exchange begins after it.
    private let delay: TimeAmount?
    private var delayTask: Scheduled<Void>?
    /// The endpoint the current try counts as in flight on (LEAST_REQUEST), until the try ends.
    private var countedEndpoint: Int?
    /// The cluster's outlier detector, when it has one; it hears how each try went, once.
    private var outliers: OutlierTracker?
    private var tryReported = false
    /// Endpoints tried so far, when a retry should avoid them (Envoy's `previous_hosts`).
    private var triedEndpoints: [Int] = []
    /// The back-off before the next try, while it runs.
    private var retryTask: Scheduled<Void>?
    private var perTryTask: Scheduled<Void>?
    /// A `maxRetries` slot of the circuit breaker is held by the retry under way.
    private var holdsRetrySlot = false
    /// The request waits for an HTTP/1.1 connection of its loop (being made, or to come free).
    private var connectionWaiter: ConnectionWaiter?
    /// The circuit breaker whose `http1MaxPendingRequests` slot the request holds while it waits for a
    /// connection (kept apart from `circuitBreaker`, which the end of the exchange lets go).
    private var pendingSlot: ClusterCircuitBreaker?
    /// The cluster's circuit breaker, when it has limits; the exchange holds one of its request slots
    /// until it concludes.
    private var circuitBreaker: ClusterCircuitBreaker?

    private var state: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>
    private var attempt: UpstreamAttempt?
    /// Where the current attempt goes; a retry on a new connection goes to the same place.
    private var target: UpstreamTarget?
    private var upstreamStartedAt = NIODeadline.now()
    private var timeoutTask: Scheduled<Void>?
    /// Why the last connect failed below HTTP (a TLS handshake), for the local reply's body.
    private var transportFailureReason: String?

    init(downstream: DownstreamResponder, loop: LoopContext, runtime: ProxyRuntime, forwarding: Dispatch.Forwarding) {
        self.downstream = downstream
        self.loop = loop
        self.runtime = runtime
        cluster = forwarding.cluster
        snapshotVersion = forwarding.snapshotVersion
        request = forwarding.request
        responseMutations = forwarding.responseMutations
        rateLimitHeaders = forwarding.rateLimitHeaders
        timeout = forwarding.timeout
        hashKey = forwarding.hashKey
        delay = forwarding.delay
        state = UpstreamExchangeState(retryPolicy: forwarding.retryPolicy, replayLimit: forwarding.retryBufferBytes)
    }

    // MARK: choosing an endpoint and opening an attempt

    func start() {
        // The client's body waits in the state machine until an attempt exists: hold its reads meanwhile.
        downstream.setUpstreamBlocked(true)
        guard let delay else { return begin() }
        // Envoy's fault delay: nothing leaves for the upstream until it has passed.
        delayTask = loop.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            delayTask = nil
            guard !state.isFinished else { return }
            if state.requestHasEnded { startRouteTimeout() }
            begin()
        }
    }

    /// Admits the request to the cluster (its circuit breaker's request slot, held across retries),
    /// then starts the first try.
    private func begin() {
        guard cluster.discovery.isDynamicForward || !cluster.endpoints.isEmpty else { return attemptFailed(.noHealthyUpstream) }
        if let breaker = runtime.breakers.breaker(for: cluster, version: snapshotVersion) {
            guard breaker.beginRequest() else { return attemptFailed(.overflow) }
            circuitBreaker = breaker
        }
        outliers = runtime.outliers.tracker(for: cluster, version: snapshotVersion)
        startTry()
    }

    /// One try: an endpoint (another than those tried, when the retry policy says so), its address,
    /// then an attempt on it.
    private func startTry() {
        if transportFailureReason != nil {
            // A reason belongs to the try that failed: the log and the reply give the last try's only.
            transportFailureReason = nil
            downstream.updateRecord { $0.upstreamTransportFailureReason = nil }
        }
        if case .dynamicForward(_, let port) = cluster.discovery { return openNamedHost(port: port) }
        guard let endpointIndex = pickEndpoint() else {
            // Every endpoint is ejected, and the cluster does not panic: Envoy's "no healthy upstream".
            return attemptFailed(.noHealthyUpstream)
        }
        let endpoint = cluster.endpoints[endpointIndex]
        loop.requestBegan(cluster: cluster, endpoint: endpointIndex, version: snapshotVersion)
        countedEndpoint = endpointIndex
        tryReported = false
        switch cluster.discovery {
        case .staticAddresses:
            guard let target = loop.upstreamTarget(of: cluster, endpoint: endpointIndex, version: snapshotVersion) else {
                return attemptFailed(.noHealthyUpstream)
            }
            open(to: target)
        case .dns:
            runtime.dns.resolve(host: endpoint.address, port: endpoint.port, on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let addresses):
                    guard !state.isFinished else { return }
                    let index = loop.nextResolved(of: cluster, endpoint: endpointIndex, count: addresses.count,
                                                  version: snapshotVersion, hash: hashKey)
                    open(to: loop.upstreamTarget(of: cluster, resolved: addresses[index]))
                case .failure:
                    attemptFailed(.noHealthyUpstream, reason: "dns_resolution_failure")
                }
            }
        case .dynamicForward:
            preconditionFailure("a dynamic forward cluster has no endpoints to pick")
        case .kubernetesService:
            runtime.services.resolve(name: endpoint.address, port: endpoint.port,
                                     configured: runtime.store.snapshot.settings.resolverAddresses,
                                     on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let addresses) where !addresses.isEmpty:
                    guard !state.isFinished else { return }
                    let index = loop.nextResolved(of: cluster, endpoint: endpointIndex, count: addresses.count,
                                                  version: snapshotVersion, hash: hashKey)
                    open(to: loop.upstreamTarget(of: cluster, resolved: addresses[index]))
                case .success:
                    attemptFailed(.noHealthyUpstream)
                case .failure(let error):
                    attemptFailed(.noHealthyUpstream, reason: "dns_resolution_failure: \(error)")
                }
            }
        }
    }

    /// The cluster's load balancer's pick; a retry that avoids previous hosts asks again, up to five
    /// picks in all (Envoy's `host_selection_retry_max_attempts` as Istio sets it), for one not tried.
    private func pickEndpoint() -> Int? {
        guard !triedEndpoints.isEmpty, let policy = state.retries.policy else {
            return loop.pickEndpoint(of: cluster, hash: hashKey, version: snapshotVersion, outliers: outliers)
        }
        // retryRemoteLocalities: the retry goes to a locality priority not tried yet, when there is one.
        let avoiding = policy.avoidsPreviousPriorities
            ? triedEndpoints.compactMap { cluster.localityPlan?.priority(ofEndpoint: $0) } : []
        var choice = loop.pickEndpoint(of: cluster, hash: hashKey, version: snapshotVersion, outliers: outliers,
                                       avoidingPriorities: avoiding)
        var hashing = false
        if case .consistentHash = cluster.loadBalancing { hashing = true }
        if policy.avoidsPreviousHosts(consistentHash: hashing) {
            var picks = 1
            while let picked = choice, triedEndpoints.contains(picked), picks < 5 {
                choice = loop.pickEndpoint(of: cluster, hash: hashKey, version: snapshotVersion, outliers: outliers,
                                           avoidingPriorities: avoiding)
                picks += 1
            }
        }
        return choice
    }

    /// ServiceEntry `resolution: NONE`: the host the request names, resolved by DNS, if the
    /// ServiceEntry's hosts cover it; any other host is not in the registry (502 `NR`).
    private func openNamedHost(port: Int) {
        let host = request.authority.lowercased()
        guard cluster.discovery.forwards(to: host[...]) else { return attemptFailed(.notInRegistry) }
        // Through the DNS client with the answers' TTLs (as Kubernetes names are), not getaddrinfo: the
        // names come from requests, and a bounded cache that honours TTLs is what they need.
        runtime.services.resolve(name: host, port: port, configured: runtime.store.snapshot.settings.resolverAddresses,
                                 on: loop.eventLoop).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let addresses) where !addresses.isEmpty:
                guard !state.isFinished else { return }
                open(to: loop.upstreamTarget(of: cluster, resolved: addresses[Int(loop.random.next() % UInt64(addresses.count))]))
            case .success, .failure:
                attemptFailed(.noHealthyUpstream, reason: "dns_resolution_failure")
            }
        }
    }

    private func open(to target: UpstreamTarget, forceNew: Bool = false) {
        self.target = target
        downstream.updateRecord { $0.upstreamHost = target.text }
        var key = target.poolKey
        var transport: UpstreamTransport?
        if let tls = cluster.tls {
            guard let made = loop.transport(for: tls, host: request.authority, contexts: runtime.tlsContexts,
                                            cluster: cluster, version: snapshotVersion) else {
                // Never plaintext instead: a cluster whose context is missing fails like a failed handshake.
                return attemptFailed(.connectFailure, reason: TLSFailureReason.missingContext)
            }
            transport = made
            key.transport = made.key
        }
        if cluster.http2 { return openStream(to: target, key: key, transport: transport) }
        // The fast path: a warm connection, synchronously, without a future.
        if !forceNew, let idle = loop.pool.takeIdle(key: key, idleTimeout: .nanoseconds(cluster.idleTimeoutNanoseconds),
                                                     maxAge: cluster.maxConnectionDurationNanoseconds.map { .nanoseconds($0) }) {
            return opened(http1Attempt(ConnectionPool.Lease(connection: idle, reused: true)))
        }
        guard beginPending() else { return attemptFailed(.overflow) }
        let spec = ConnectionWaiter.Spec(
            key: key, address: target.address, connectTimeout: .nanoseconds(cluster.connectTimeoutNanoseconds),
            limits: runtime.upstreamLimits, transport: transport, keepalive: cluster.tcpKeepalive,
            idleTimeout: .nanoseconds(cluster.idleTimeoutNanoseconds),
            budget: connectionBudget)
        let waiter = ConnectionWaiter(spec: spec) { [self] result in
            connectionWaiter = nil
            endPending()
            switch result {
            case .success(let lease):
                guard !state.isFinished else { return loop.pool.release(lease.connection) }
                opened(http1Attempt(lease))
            case .failure(let error):
                attemptFailed(.connectFailure, reason: (error as? UpstreamConnectError)?.transportFailureReason)
            }
        }
        // Set first: a connect that fails at once answers inside `acquire`.
        connectionWaiter = waiter
        if loop.pool.acquire(waiter) != .connect { runtime.clusterEvents.record(.connectionOverflow, cluster: cluster.name) }
    }

    /// The circuit breaker new upstream connections count against, when the cluster sets `maxConnections`.
    private var connectionBudget: ClusterCircuitBreaker? {
        circuitBreaker?.limits.maxConnections == nil ? nil : circuitBreaker
    }

    /// Waiting for a connection, new or (under `maxConnections`) coming free, is what Envoy calls a
    /// pending request: it takes an `http1MaxPendingRequests` slot (false: none left) and is counted.
    private func beginPending() -> Bool {
        if let breaker = circuitBreaker, breaker.limits.maxPendingRequests != nil {
            guard breaker.beginPending() else { return false }
            pendingSlot = breaker
        }
        loop.pendingBegan(cluster: cluster, version: snapshotVersion)
        return true
    }

    /// The request no longer waits for a connection: its pending slot and count are given back.
    private func endPending() {
        pendingSlot?.endPending()
        pendingSlot = nil
        loop.pendingEnded(cluster: cluster, version: snapshotVersion)
    }

    /// The exchange ended while its request waited for a connection (its timeout, or its client gone).
    private func stopWaitingForConnection() {
        guard let waiter = connectionWaiter else { return }
        connectionWaiter = nil
        loop.pool.cancel(waiter)
        endPending()
    }

    private func http1Attempt(_ lease: ConnectionPool.Lease) -> HTTP1Attempt {
        guard case .http1(let head) = request.head else { preconditionFailure("an HTTP/1.1 cluster gets an HTTP/1.1 head") }
        return HTTP1Attempt(lease: lease, pool: loop.pool, head: head, framing: request.framing, isHEAD: request.isHEAD,
                            maxRequestsPerConnection: cluster.maxRequestsPerConnection,
                            maxConnectionAge: cluster.maxConnectionDurationNanoseconds.map { .nanoseconds($0) }, receiver: self,
                            metrics: loop.metrics)
    }

    private func openStream(to target: UpstreamTarget, key: PoolKey, transport: UpstreamTransport?) {
        let maxAge = cluster.maxConnectionDurationNanoseconds.map { TimeAmount.nanoseconds($0) }
        // The fast path: the endpoint's connection is up, and the stream opens on it without a future.
        if let connection = loop.http2Pool.ready(key: key, maxAge: maxAge) { return openStream(on: connection) }
        // Until the connection is made the request is pending, as Envoy counts it for HTTP/2.
        guard beginPending() else { return attemptFailed(.overflow) }
        loop.http2Pool.connection(key: key, address: target.address,
                                  connectTimeout: .nanoseconds(cluster.connectTimeoutNanoseconds), transport: transport,
                                  keepalive: cluster.tcpKeepalive, maxAge: maxAge, budget: connectionBudget) { [runtime, cluster] in
            runtime.clusterEvents.record(.connectionOverflow, cluster: cluster.name)
        }
            .assumeIsolated().whenComplete { [self] result in
                endPending()
                switch result {
                case .success(let connection):
                    guard !state.isFinished else { return }
                    openStream(on: connection)
                case .failure(let error):
                    attemptFailed(.connectFailure, reason: (error as? UpstreamConnectError)?.transportFailureReason)
                }
            }
    }

    private func openStream(on connection: HTTP2ClientConnection) {
        guard case .http2(let fields) = request.head else { preconditionFailure("an HTTP/2 cluster gets an HTTP/2 head") }
        let bodyless = request.framing == .none
        connection.openStream(for: self, requestIsHEAD: request.isHEAD).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let stream):
                opened(HTTP2Attempt(stream: stream, fields: fields, bodyless: bodyless, localAddress: connection.localAddress))
            case .failure:
                attemptFailed(.connectFailure)
            }
        }
    }

    private func opened(_ attempt: UpstreamAttempt) {
        switch state.attemptOpened(reused: attempt.reused) {
        case .discard:
            attempt.close()
        case .send(let opening):
            self.attempt = attempt
            upstreamStartedAt = .now()
            downstream.updateRecord { $0.upstreamLocalAddress = attempt.localAddress }
            attempt.sendHead()
            for body in opening.body { attempt.sendBody(body) }
            if let end = opening.end {
                attempt.sendEnd(trailers: end.trailers)
                startPerTryTimer()
            }
            // Inside the downstream read cycle, channelReadComplete flushes once for everything written.
            if !downstream.inReadCycle { attempt.flush() }
            downstream.setUpstreamBlocked(!attempt.isWritable)
        }
    }

    private func attemptFailed(_ failure: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>.Failure, reason: String? = nil) {
        guard !state.isFinished else { return }
        if let reason {
            transportFailureReason = reason
            downstream.updateRecord { $0.upstreamTransportFailureReason = reason }
        }
        if failure == .connectFailure {
            runtime.clusterEvents.recordConnectFailure(cluster: cluster.name, transportFailureReason: transportFailureReason)
        }
        carryOut(state.attemptFailed(failure, claimRetry: claimRetry), endpointFailed: failure.isEndpointFailure)
    }

    // MARK: retries

    /// What the state machine decided when a try ended: another try, or the end of the exchange.
    private func carryOut(_ action: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>.TryEndAction?, endpointFailed: Bool) {
        switch action {
        case nil: return
        case .retry(let number): retry(number, endpointFailed: endpointFailed)
        case .end(let outcome): conclude(outcome)
        }
    }

    /// Asks the cluster's circuit breaker for a `maxRetries` slot; the retry before it gives its slot
    /// back, as it is over.
    private func claimRetry() -> Bool {
        releaseRetrySlot()
        guard let breaker = circuitBreaker, breaker.limits.maxRetries != nil else { return true }
        guard breaker.beginRetry() else {
            runtime.clusterEvents.record(.retryOverflow, cluster: cluster.name)
            return false
        }
        holdsRetrySlot = true
        return true
    }

    private func releaseRetrySlot() {
        guard holdsRetrySlot else { return }
        holdsRetrySlot = false
        circuitBreaker?.endRetry()
    }

    /// Ends the try (its attempt closed, its endpoint told), then backs off and starts the next one.
    /// The client's reads stay held meanwhile: what it sends waits in the state machine.
    private func retry(_ number: Int, endpointFailed: Bool) {
        attempt?.close()
        attempt = nil
        // Kept only once a retry happens: a request that succeeds at once allocates nothing for it.
        if let endpoint = countedEndpoint { triedEndpoints.append(endpoint) }
        endTry(endpointFailed: endpointFailed)
        runtime.clusterEvents.record(.retry, cluster: cluster.name)
        downstream.setUpstreamBlocked(true)
        guard let policy = state.retries.policy else { preconditionFailure("only a retry policy retries") }
        let backoff = policy.backoffNanoseconds(retry: number, draw: loop.random.next())
        retryTask = loop.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(backoff)) { [weak self] in
            guard let self else { return }
            retryTask = nil
            guard !state.isFinished else { return }
            startTry()
        }
    }

    /// `perTryTimeout` runs from when the try has the whole request (Envoy starts it once the request is
    /// sent) until its response head.
    private func startPerTryTimer() {
        guard let nanoseconds = state.retries.policy?.perTryTimeoutNanoseconds, perTryTask == nil, attempt != nil else { return }
        perTryTask = loop.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) { [weak self] in
            guard let self else { return }
            perTryTask = nil
            runtime.clusterEvents.record(.perTryTimeout, cluster: cluster.name)
            carryOut(state.perTryTimedOut(claimRetry: claimRetry), endpointFailed: true)
        }
    }

    /// The current try is over: its per-try timer stops, its endpoint is no longer in flight, and the
    /// outlier detector hears of a failure without a response (a response head reported itself).
    private func endTry(endpointFailed: Bool) {
        perTryTask?.cancel()
        perTryTask = nil
        if endpointFailed { reportToOutlierDetection(.localOriginFailure) }
        if let endpoint = countedEndpoint {
            loop.requestEnded(cluster: cluster, endpoint: endpoint, version: snapshotVersion)
            countedEndpoint = nil
        }
    }

    // MARK: request side

    func requestBody(_ body: ByteBuffer) {
        guard body.readableBytes > 0 else { return }
        switch state.requestBody(body) {
        case .forward(let body):
            guard let attempt else { return }
            attempt.sendBody(body)
            if !attempt.isWritable { downstream.setUpstreamBlocked(true) }
        case .hold, .drop:
            break
        }
    }

    func requestEnd(_ trailers: HTTPHeaderBlock?) {
        guard !state.isFinished else { return }
        switch state.requestEnded(trailers: trailers.map(withoutProhibitedTrailerFields)) {
        case .ignore:
            return
        case .hold:
            break
        case .forward(let end):
            attempt?.sendEnd(trailers: end.trailers)
            if !downstream.inReadCycle { attempt?.flush() }
            startPerTryTimer()
        }
        // Envoy's route timeout runs from the end of the request to the end of the response, as the
        // router sees them: a request still in its fault delay starts the clock when the delay ends.
        if delayTask == nil { startRouteTimeout() }
    }

    private func startRouteTimeout() {
        guard let timeout, timeoutTask == nil else { return }
        timeoutTask = loop.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in self?.timedOut() }
    }

    func flushUpstream() { attempt?.flush() }

    func downstreamBecameWritable() { attempt?.resumeReads() }

    /// The downstream side gave up on this exchange (client gone, or the gateway answered locally, e.g. a
    /// malformed body). A no-op once the exchange has finished on its own.
    func abandon() {
        delayTask?.cancel()
        delayTask = nil
        retryTask?.cancel()
        retryTask = nil
        if let outcome = state.abandon() { conclude(outcome) }
    }

    // MARK: response side

    func upstreamResponseHead(_ response: HTTP1ResponseHead) {
        guard state.isReceiving else { return }
        if response.status == 101, !answersForwardedUpgrade(response) {
            // A 101 to a request the gateway did not forward as an upgrade (or for another protocol) would
            // turn the connection into a tunnel nothing checks: everything after it would reach the
            // upstream unrouted and unauthorized. It is a protocol error, and the connection is dropped.
            return rejectResponse(reason: "unexpected_switching_protocols")
        }
        reportToOutlierDetection(.response(status: response.status))
        let serviceTime = (NIODeadline.now() - upstreamStartedAt).nanoseconds / 1_000_000
        var headers = response.headers
        ForwardingHeaders.prepareDownstreamResponse(&headers, connection: response.connection,
                                                    serviceTimeMillis: serviceTime)
        // Framing toward the client is the gateway's own: the length it keeps is written canonical.
        if let length = ForwardingHeaders.downstreamContentLength(response) { headers.add("content-length", decimal: length, role: .contentLength) }
        headers.apply(responseMutations)
        if let rateLimitHeaders { headers.setRateLimitHeaders(rateLimitHeaders) }
        downstream.updateRecord {
            $0.upstreamServiceTimeMillis = serviceTime
            $0.responseCodeDetails = "via_upstream"
        }
        if let expected = request.expectedWebSocketAccept, response.status < 300 {
            // A bridged upgrade succeeds only with a 101 that answers the gateway's key: a 2xx (or a 101
            // with the wrong accept) would tell the client a WebSocket is open when none is.
            let accepted = response.status == 101 && response.headers.first("sec-websocket-accept") == expected
            guard accepted else { return rejectResponse(reason: "websocket_handshake_failed") }
        }
        switch state.responseHead(keepAlive: response.keepAlive, opensTunnel: response.status == 101,
                                  result: retryResult(response), claimRetry: claimRetry) {
        case .ignore:
            return
        case .retry(let number):
            retry(number, endpointFailed: false)
        case .relay:
            // Envoy lets a response that began run on under the route timeout only.
            perTryTask?.cancel()
            perTryTask = nil
            if state.retries.retriesMade > 0 { runtime.clusterEvents.record(.retrySuccess, cluster: cluster.name) }
            downstream.respondHead(status: response.status, headers: headers, framing: response.framing, bodyBytes: [])
        case .relayAndTunnel:
            if let upgrade = request.upgrade {
                headers.add("connection", "upgrade")
                headers.add("upgrade", upgrade)
            }
            timeoutTask?.cancel()
            timeoutTask = nil
            downstream.respondHead(status: 101, headers: headers, framing: .none, bodyBytes: [])
            downstream.startTunnel()
            attempt?.startTunnel()
            downstream.flushDownstream()
        }
    }

    /// The response head as the retry policy judges it: its status, and the headers it reads only when
    /// they can matter.
    private func retryResult(_ response: HTTP1ResponseHead) -> RetryPolicy.TryResult? {
        guard let policy = state.retries.policy else { return nil }
        var grpcStatus: Int?
        if policy.readsGRPCStatus, let value = response.headers.first("grpc-status") { grpcStatus = Int(value) }
        let rateLimited = policy.conditions.contains(.envoyRateLimited) && response.headers.first("x-envoy-ratelimited") != nil
        return .response(status: response.status, grpcStatus: grpcStatus, rateLimited: rateLimited)
    }

    /// Whether a 101 switches to what the gateway asked for: a WebSocket upgrade it forwarded on an
    /// attempt that can tunnel, from a client side that can too, named in the response's `Upgrade`.
    private func answersForwardedUpgrade(_ response: HTTP1ResponseHead) -> Bool {
        guard let upgrade = request.upgrade, attempt?.canTunnel == true, downstream.canTunnel else { return false }
        var named = false
        response.headers.forEachValue(role: .upgrade) { value in
            ASCII.forEachListElement(value) { token in
                if ASCII.equalsIgnoringCase(token, upgrade) { named = true }
            }
        }
        return named
    }

    private func rejectResponse(reason: String) {
        downstream.updateRecord { $0.upstreamTransportFailureReason = reason }
        carryOut(state.protocolError(claimRetry: claimRetry), endpointFailed: false)
    }

    /// Trailers without the fields RFC 9110 §6.5.1 prohibits there (counted when any were dropped).
    private func withoutProhibitedTrailerFields(_ trailers: HTTPHeaderBlock) -> HTTPHeaderBlock {
        var trailers = trailers
        loop.metrics.record(.prohibitedTrailer, count: trailers.removeProhibitedTrailerFields())
        return trailers
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard state.isReceiving else { return }
        if !downstream.respondBody(body) { attempt?.pauseReads() }
    }

    func upstreamReadComplete() {
        guard !state.isFinished else { return }
        downstream.flushDownstream()
    }

    func upstreamResponseEnd(_ trailers: HTTPHeaderBlock?) {
        guard let outcome = state.responseEnded() else { return }
        conclude(outcome, trailers: trailers.map(withoutProhibitedTrailerFields))
    }

    func upstreamClosed() {
        switch state.upstreamClosed(claimRetry: claimRetry) {
        case .ignore:
            return
        case .retry(let number):
            retry(number, endpointFailed: true)
        case .retryOnNewConnection:
            attempt = nil
            guard let target else { preconditionFailure("an attempt was opened, so it had a target") }
            downstream.setUpstreamBlocked(true)
            open(to: target, forceNew: true)
        case .end(let outcome):
            conclude(outcome)
        }
    }

    func upstreamRefusedStream() {
        switch state.upstreamClosed(refusedStream: true, claimRetry: claimRetry) {
        case .ignore, .retryOnNewConnection: return
        case .retry(let number): retry(number, endpointFailed: true)
        case .end(let outcome): conclude(outcome)
        }
    }

    func upstreamProtocolError() {
        carryOut(state.protocolError(claimRetry: claimRetry), endpointFailed: true)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        guard !state.isFinished else { return }
        downstream.setUpstreamBlocked(!isWritable)
    }

    private func timedOut() {
        if let outcome = state.timedOut() { conclude(outcome) }
    }

    // MARK: tunnel (WebSocket after 101)

    func upstreamTunnelData(_ bytes: ByteBuffer) {
        guard state.isTunnelling else { return }
        if !downstream.tunnelToClient(bytes) { attempt?.pauseReads() }
    }

    /// Bytes from the client once the tunnel is open.
    func tunnelToUpstream(_ bytes: ByteBuffer) {
        guard state.isTunnelling, let attempt else { return }
        attempt.sendTunnelBytes(bytes)
        if !attempt.isWritable { downstream.setUpstreamBlocked(true) }
    }

    /// The client ended its side of the tunnel (HTTP/2 END_STREAM): the upstream sees end of input.
    func tunnelClientEnded() {
        guard state.isTunnelling else { return }
        attempt?.closeOutput()
    }

    /// The failures the cluster's `envoy_cluster_*` counters count once per request (connect failures
    /// and per-try timeouts are counted per try, when they happen).
    private func recordClusterEvent(_ outcome: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>.Outcome) {
        if state.retries.limitReached { runtime.clusterEvents.record(.retryLimitExceeded, cluster: cluster.name) }
        let failure: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>.Failure
        switch outcome {
        case .failedBeforeResponse(let value), .failedDuringResponse(let value): failure = value
        case .completed, .tunnelClosed, .abandoned: return
        }
        switch failure {
        case .overflow: runtime.clusterEvents.record(.overflow, cluster: cluster.name)
        case .timeout: runtime.clusterEvents.record(.timeout, cluster: cluster.name)
        case .noHealthyUpstream, .connectFailure, .connectionTermination, .protocolError, .perTryTimeout, .notInRegistry: break
        }
    }

    /// Tells the cluster's outlier detector how the current try on its endpoint went (once per try).
    private func reportToOutlierDetection(_ result: UpstreamResult) {
        guard !tryReported, let tracker = outliers, let endpoint = countedEndpoint else { return }
        tryReported = true
        runtime.clusterEvents.record(.ejection, cluster: cluster.name,
                                     count: tracker.record(result, endpoint: endpoint, now: OutlierTracker.now))
    }

    // MARK: the end

    /// Carries out how the exchange ended: the attempt goes back to its pool or is closed, and the client
    /// side hears what it must (nothing, when it abandoned the exchange).
    private func conclude(_ outcome: UpstreamExchangeState<ByteBuffer, HTTPHeaderBlock>.Outcome,
                          trailers: HTTPHeaderBlock? = nil) {
        timeoutTask?.cancel()
        timeoutTask = nil
        retryTask?.cancel()
        retryTask = nil
        stopWaitingForConnection()
        recordClusterEvent(outcome)
        // No response: a connect failure, reset or timeout, which Envoy counts as a 5xx and a gateway
        // error alike.
        var endpointFailed = false
        if case .failedBeforeResponse(let failure) = outcome { endpointFailed = failure.isEndpointFailure }
        endTry(endpointFailed: endpointFailed)
        // URX: the last try's result was retriable and no retry was left; UO: the circuit breaker
        // refused a retry. The response (relayed or local) stands either way.
        if state.retries.limitReached || state.retries.overflowed {
            let retries = state.retries
            downstream.updateRecord {
                if retries.limitReached { $0.responseFlags.insert(.upstreamRetryLimitExceeded) }
                if retries.overflowed { $0.responseFlags.insert(.upstreamOverflow) }
            }
        }
        releaseRetrySlot()
        circuitBreaker?.endRequest()
        circuitBreaker = nil
        let attempt = self.attempt
        self.attempt = nil
        switch outcome {
        case .completed(let reusable):
            attempt?.complete(reusable: reusable)
            downstream.respondEnd(trailers)
        case .failedBeforeResponse(let failure):
            attempt?.close()
            var reply = failure.localReply
            if failure == .connectFailure, let reason = transportFailureReason { reply = .connectFailure(transportFailureReason: reason) }
            if state.retries.retriesMade > 0 { reply = reply.afterRetries() }
            downstream.sendLocalReplyForCurrent(reply)
        case .failedDuringResponse(let failure):
            attempt?.close()
            let abort = failure.abort
            downstream.abortResponse(flag: abort.flag, details: abort.details)
        case .tunnelClosed:
            attempt?.close()
            downstream.tunnelClosed()
        case .abandoned:
            attempt?.close()
        }
    }
}

extension UpstreamExchangeState.Failure {
    /// The endpoint tried was at fault (outlier detection counts it); not so when no endpoint was
    /// tried or a circuit breaker refused the request before it left.
    var isEndpointFailure: Bool {
        switch self {
        case .noHealthyUpstream, .overflow, .notInRegistry: false
        case .connectFailure, .connectionTermination, .protocolError, .timeout, .perTryTimeout: true
        }
    }

    /// The answer when nothing reached the client yet: Envoy's status, body, flag and details.
    var localReply: LocalReply {
        switch self {
        case .noHealthyUpstream: .noHealthyUpstream
        case .connectFailure: .connectFailure
        case .connectionTermination: .connectionTermination
        case .protocolError: .upstreamProtocolError
        case .timeout: .upstreamTimeout
        case .perTryTimeout: .upstreamPerTryTimeout
        case .overflow: .overflow
        case .notInRegistry: .notInRegistry
        }
    }

    /// The flag and details of a response cut short after it began.
    var abort: (flag: ResponseFlags, details: String) {
        switch self {
        case .noHealthyUpstream, .connectFailure:
            (.upstreamConnectionFailure, "upstream_reset_after_response_started{connection_failure}")
        case .connectionTermination:
            (.upstreamConnectionTermination, "upstream_reset_after_response_started{connection_termination}")
        case .protocolError:
            (.upstreamProtocolError, "upstream_reset_after_response_started{protocol_error}")
        case .timeout:
            (.upstreamRequestTimeout, "upstream_response_timeout")
        case .perTryTimeout:
            (.upstreamRequestTimeout, "upstream_per_try_timeout")
        case .overflow:
            (.upstreamOverflow, "upstream_reset_after_response_started{overflow}")
        case .notInRegistry:
            (.noRouteFound, "outbound_host_not_in_registry")
        }
    }
}
