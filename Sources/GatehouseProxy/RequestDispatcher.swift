import GatehouseHTTP1
import GatehouseRateLimit
import GatehouseRouting
import GatehouseSnapshot
import GatehouseTelemetry
import GatehouseSecurity
import GatehouseUpstream
import NIOCore

/// What the gateway does with a request head, whichever protocol it came in on: answer it itself, or
/// forward it to a cluster. Reads the live snapshot; fills the access-log fields it decides.
enum Dispatch {
    case reply(LocalReply, route: Route?)
    case forward(Forwarding)
    /// The request's rate limits are in the `redis` store: it waits for the store's answer (its body
    /// held back), then `RequestDispatcher.resume` decides the rest.
    case awaitRateLimit(PendingDispatch)

    struct Forwarding {
        var request: UpstreamRequest
        var cluster: Cluster
        /// The snapshot the cluster belongs to: per-loop cluster state is kept by snapshot version.
        var snapshotVersion: Int
        var responseMutations: [HeaderMutation]
        var timeout: TimeAmount?
        /// VirtualService `fault.delay`, when this request drew it: the exchange starts after it.
        var delay: TimeAmount? = nil
        /// The request's consistent-hash key, when the cluster balances by one and the request has it.
        var hashKey: UInt64?
        /// The route's retry policy; nil: no retries.
        var retryPolicy: RetryPolicy?
        /// Bootstrap `limits.retryBufferBytes`: the most request body kept for a retry to send again.
        var retryBufferBytes = 0
        /// Copies of the request for the route's mirrors that drew it (each without mirrors of its own).
        var mirrors: [Forwarding] = []
        /// The rate limit whose figures the response's `x-ratelimit-*` headers report, when one applied
        /// and its policy wants them on allowed responses.
        var rateLimitHeaders: RateLimitDecision?
    }
}

/// A request stopped at its rate limits while the `redis` store answers: what the dispatcher had
/// worked out so far, so it goes on from there rather than starting again (policy and JWT checks run
/// once per request).
final class PendingDispatch {
    fileprivate let progress: DispatchProgress
    fileprivate let candidates: [RequestRateLimit.Candidate]
    /// What to ask the store, one per candidate.
    let takes: [RedisTake]
    /// The request's instant (wall-clock nanoseconds).
    let now: Int64
    /// Who waits, from `RequestContext.awaitRateLimitStore` until the store's outcome is handed over
    /// (then dropped: an outcome that comes after its command timed out finds nobody).
    private var waiting: RequestContext?

    fileprivate init(progress: DispatchProgress, candidates: [RequestRateLimit.Candidate], takes: [RedisTake], now: Int64) {
        self.progress = progress
        self.candidates = candidates
        self.takes = takes
        self.now = now
    }

    func wait(_ request: RequestContext, store: RedisRateLimitStore) {
        waiting = request
        store.take(self)
    }

    /// The store's outcome for this request's rules.
    func answered(_ outcome: RedisTakeOutcome) {
        guard let request = waiting else { return }
        waiting = nil
        request.rateLimitStoreAnswered(self, outcome: outcome)
    }
}

/// The dispatcher's findings up to the rate limits.
private struct DispatchProgress {
    var head: RequestHead
    var target: RequestTarget
    var requestID: String
    var origin: DownstreamOrigin
    var snapshot: Snapshot
    var security: RequestSecurity
    var scheme: String
    var selected: (VirtualHost, RouteSelection?)?
    // The route input and the route taken are not kept: made again from these when the request goes on,
    // rather than copied (a Route's fields) into every waiting request and out again.
}

/// Where a request arrived: the listener port, and the TLS session when there is one.
struct DownstreamOrigin {
    var listenerPort: Int
    var tls: DownstreamTLS?
    var clientIP: String?
    /// The address the client connected to (`destination.ip`).
    var localIP: String? = nil
    /// `clientIP` and `localIP` parsed, when the connection already did it once for all its requests.
    var clientAddress: IPAddress? = nil
    var localAddress: IPAddress? = nil
}

/// Sees what the dispatcher decides, step by step, for `gatehouse explain`; nil on the data path, so
/// explaining a request runs the very code that serves it.
final class DispatchObserver {
    var normalizedPath: String?
    var authentication: AuthenticationResult?
    var rules: [(PolicyRule, RuleMismatch?)] = []
    var decision: AuthorizationDecision?
    var rateLimits: [RequestRateLimit.Observation] = []
}

enum RequestDispatcher {
    /// Routes `head` (HTTP/1.1, or HTTP/2 mapped onto the same shape) as Istio would.
    static func dispatch(_ head: RequestHead, host: String?, requestID: String, origin: DownstreamOrigin,
                         snapshot: Snapshot, loop: LoopContext, allocator: ByteBufferAllocator,
                         keys: any JWKSProvider, counters: DecisionCounters?,
                         record: inout AccessLogRecord, observer: DispatchObserver? = nil) -> Dispatch {
        guard var target = RequestTarget(uri: head.target, method: head.method, version: head.version, host: host,
                                         hostCount: head.hostCount) else {
            return .reply(.badRequest(), route: nil)
        }
        // Routing, policy and the upstream all see the normalized path, so no spelling of a path can
        // reach a route or slip past a policy written for another (CVE-2019-9901, CVE-2021-31920).
        if target.path != "*" {
            do {
                target.path = try PathNormalizer.normalize(Substring(target.path), mode: snapshot.settings.pathNormalization)
                observer?.normalizedPath = target.path
            } catch {
                return .reply(.badRequest(details: "path_normalization_failed"), route: nil)
            }
        }
        record.authority = target.authority
        record.grpc = head.headers.containsValue("content-type") { Self.isGRPC($0) }
        // `secret.example.com.` is the same name as `secret.example.com`: without this a DENY on the
        // host would not see it (Envoy's strip_trailing_host_dot).
        target.stripTrailingHostDot()
        guard let listener = snapshot.listener(port: origin.listenerPort) else { return .reply(.noRoute, route: nil) }
        var routes = listener.routes
        let scheme = origin.tls == nil ? "http" : "https"
        if let tls = origin.tls {
            record.requestedServerName = tls.serverName
            record.tlsVersion = tls.version
            record.sourcePrincipal = tls.peerPrincipal
            // The server is looked up again in the live snapshot: a reload may have changed its routes.
            guard let server = listener.tls?.server(forSNI: tls.serverName) else { return .reply(.noRoute, route: nil) }
            guard server.servesHost(target.authority) else { return .reply(.misdirectedRequest, route: nil) }
            routes = server.routes
        }
        var security = RequestSecurity()
        if let refusal = security.check(head: head, target: target, scheme: scheme, origin: origin, listener: listener,
                                        snapshot: snapshot, keys: keys, tokenCache: loop.tokenCache, counters: counters,
                                        record: &record,
                                        observer: observer) {
            return .reply(refusal, route: nil)
        }
        let input = routeInput(head: head, target: target, scheme: scheme, origin: origin)
        let selected: (VirtualHost, RouteSelection?)?
        do {
            selected = try routes.select(input)
        } catch {
            return refuseUndecidedRegex(loop)
        }
        // Rate limits count every request authorization let through, routed or not: a client sending
        // requests no route takes is still a client sending requests.
        let taken = takenRoute(selected)
        if let taken { record.routeName = taken.name }
        var rateLimit = RequestRateLimit()
        if let redis = loop.redisStore, observer == nil, !snapshot.rateLimits.isEmpty {
            let candidates = RequestRateLimit.candidates(head: head, target: target, origin: origin, virtualHost: selected?.0,
                                                         route: taken, security: &security, snapshot: snapshot,
                                                         loop: loop)
            if !candidates.isEmpty {
                // Only a request that waits keeps its findings in a struct: copying one on every
                // request's path showed in the profile.
                let progress = DispatchProgress(head: head, target: target, requestID: requestID, origin: origin,
                                                snapshot: snapshot, security: security, scheme: scheme, selected: selected)
                let now = RequestRateLimit.now(record)
                return .awaitRateLimit(PendingDispatch(progress: progress, candidates: candidates,
                                                       takes: redis.takes(candidates, snapshot: snapshot), now: now))
            }
        } else if let refusal = rateLimit.check(head: head, target: target, origin: origin, virtualHost: selected?.0,
                                                route: taken, security: &security, snapshot: snapshot, loop: loop,
                                                counters: counters, record: &record,
                                                observe: observer.map { observer in { observer.rateLimits.append($0) } }) {
            return .reply(refusal, route: taken)
        }
        return proceed(head: head, target: target, requestID: requestID, origin: origin, snapshot: snapshot,
                       security: security, input: input, scheme: scheme, selected: selected, rateLimit: rateLimit,
                       loop: loop, allocator: allocator, record: &record)
    }

    /// Goes on with a request the `redis` store has answered for: refused by a rule, let through, or
    /// (Redis unavailable) decided by the Bootstrap's `failureMode`.
    static func resume(_ pending: PendingDispatch, outcome: RedisTakeOutcome, loop: LoopContext, allocator: ByteBufferAllocator,
                       counters: DecisionCounters?, record: inout AccessLogRecord) -> Dispatch {
        var rateLimit = RequestRateLimit()
        let taken = takenRoute(pending.progress.selected)
        switch outcome {
        case .decided(let decisions):
            if let refusal = rateLimit.conclude(pending.candidates, decisions: decisions,
                                                limits: pending.progress.snapshot.rateLimits,
                                                counters: counters, record: &record) {
                return .reply(refusal, route: taken)
            }
        case .unavailable:
            let first = pending.progress.snapshot.rateLimits.rules[pending.candidates[0].index]
            record.ratelimit = RateLimitLogEntry(rule: first.id, remaining: 0, storeUnavailable: true)
            loop.redisHealth?.decidedByFailureMode()
            if loop.redisHealth?.failOpen == false { return .reply(.rateLimitStoreError, route: taken) }
        }
        let progress = pending.progress
        return proceed(head: progress.head, target: progress.target, requestID: progress.requestID, origin: progress.origin,
                       snapshot: progress.snapshot, security: progress.security,
                       input: routeInput(head: progress.head, target: progress.target, scheme: progress.scheme,
                                         origin: progress.origin),
                       scheme: progress.scheme, selected: progress.selected, rateLimit: rateLimit, loop: loop,
                       allocator: allocator, record: &record)
    }

    /// What route matching reads of a request.
    private static func routeInput(head: RequestHead, target: RequestTarget, scheme: String, origin: DownstreamOrigin) -> RouteInput {
        RouteInput(method: head.method, path: target.path, query: target.query, scheme: scheme, authority: target.authority,
                   port: origin.listenerPort, headers: HeaderBlockLookup(headers: head.headers))
    }

    /// The route the request takes: none on a virtual host that redirects every request to https.
    private static func takenRoute(_ selected: (VirtualHost, RouteSelection?)?) -> Route? {
        selected.flatMap { $0.0.httpsRedirect ? nil : $0.1?.route }
    }

    /// Everything after the rate limits: the route's action (a redirect, a direct response, CORS, a
    /// fault, or the forwarding to a cluster).
    private static func proceed(head: RequestHead, target: RequestTarget, requestID: String, origin: DownstreamOrigin,
                                snapshot: Snapshot, security: RequestSecurity, input: RouteInput, scheme: String,
                                selected: (VirtualHost, RouteSelection?)?, rateLimit: RequestRateLimit, loop: LoopContext,
                                allocator: ByteBufferAllocator, record: inout AccessLogRecord) -> Dispatch {
        guard let (virtualHost, selection) = selected else { return .reply(.noRoute, route: nil) }
        if virtualHost.httpsRedirect {
            let location = RedirectAction(scheme: "https", code: 301).location(for: input)
            return .reply(.redirect(status: 301, location: location), route: nil)
        }
        guard let selection else { return .reply(.noRoute, route: nil) }
        let route = selection.route
        let limitDecision = rateLimit.allowedResponseDecision
        var corsHeaders: HeaderMutation?
        if let cors = route.cors, let origin = head.headers.first("origin") {
            let allowed = cors.allows(origin: origin)
            if head.method == "OPTIONS", head.headers.first("access-control-request-method") != nil {
                // Envoy's CORS filter answers an allowed preflight itself; an unmatched one goes on to the
                // upstream unless the policy says IGNORE.
                if allowed { return .reply(.corsPreflight(headers: cors.preflightHeaders(origin: origin)), route: route) }
                if !cors.forwardsUnmatchedPreflights { return .reply(.corsPreflight(headers: []), route: route) }
            } else if allowed {
                corsHeaders = HeaderMutation(overwrite: cors.responseHeaders(origin: origin), append: [], remove: [])
            }
        }
        switch route.action {
        case .directResponse(let status, let body):
            var reply = LocalReply.direct(status: status, body: body)
            reply.extraHeaders += limitDecision.map(LocalReply.rateLimitHeaders) ?? []
            return .reply(reply, route: route)
        case .redirect(let redirect):
            var reply = LocalReply.redirect(status: redirect.code, location: redirect.location(for: input))
            reply.extraHeaders += limitDecision.map(LocalReply.rateLimitHeaders) ?? []
            return .reply(reply, route: route)
        case .forward(let forward):
            // Envoy's fault filter runs before the router: the delay, then the abort, each on its own draw.
            var delay: TimeAmount?
            if let fault = route.fault {
                delay = fault.delay(draw: loop.random.next()).map { .nanoseconds($0) }
                // Both drawn: the abort is answered at once (documented), so no delay is logged.
                if let abort = fault.abort(draw: loop.random.next()) {
                    return .reply(.faultAbort(abort), route: route)
                }
                if delay != nil { record.responseFlags.insert(.delayInjected) }
            }
            guard let destination = forward.pick(draw: loop.random.next()),
                  let cluster = snapshot.cluster(at: destination.clusterIndex) else {
                return .reply(.noHealthyUpstream, route: nil)
            }
            record.upstreamCluster = cluster.name
            let built: UpstreamRequest?
            do {
                built = try UpstreamRequestBuilder.build(
                    head: head, target: target, route: route, matched: selection.matched, rewrite: forward.rewrite,
                    destination: destination, clientIP: origin.clientIP, scheme: scheme, requestID: requestID,
                    http2: cluster.http2, upstreamTLS: cluster.tls != nil, authentication: security.headerChanges,
                    clientCert: ClientCertForwarding(mode: snapshot.settings.forwardClientCertDetails,
                                                     current: origin.tls?.clientCertDetails),
                    metrics: loop.metrics, allocator: allocator)
            } catch {
                return refuseUndecidedRegex(loop)
            }
            guard let request = built else { return .reply(.badRequest(details: "invalid_upstream_request"), route: route) }
            var hashKey: UInt64?
            var responseMutations = [destination.responseHeaders, route.responseHeaders]
            if let corsHeaders { responseMutations.append(corsHeaders) }
            if case .consistentHash(let source, _) = cluster.loadBalancing {
                hashKey = RequestHashKey.compute(source, input: input, clientIP: origin.clientIP)
                if hashKey == nil, case .cookie(let cookie) = source {
                    let generated = RequestHashKey.generatedCookie(cookie, remoteAddress: record.downstreamRemoteAddress,
                                                                   localAddress: record.downstreamLocalAddress)
                    hashKey = generated.key
                    responseMutations.append(HeaderMutation(overwrite: [], append: [("set-cookie", generated.setCookie)], remove: []))
                }
            }
            var forwarding = Dispatch.Forwarding(
                request: request, cluster: cluster, snapshotVersion: snapshot.version,
                responseMutations: responseMutations,
                timeout: route.timeoutNanoseconds.map { .nanoseconds($0) }, delay: delay, hashKey: hashKey,
                retryPolicy: route.retryPolicy, retryBufferBytes: snapshot.settings.retryBufferBytes)
            forwarding.rateLimitHeaders = limitDecision
            // Upgrades open tunnels, which are not copied (Envoy shadows requests, not tunnels).
            if !route.mirrors.isEmpty, request.upgrade == nil {
                for mirror in route.mirrors where mirror.mirrors(draw: loop.random.next()) {
                    guard let mirrorCluster = snapshot.cluster(at: mirror.clusterIndex),
                          let copy = try? UpstreamRequestBuilder.build(
                            head: head, target: target, route: route, matched: selection.matched,
                            rewrite: shadowRewrite(forward.rewrite, authority: target.authority),
                            destination: WeightedDestination(cluster: mirror.cluster, clusterIndex: mirror.clusterIndex, weight: 100),
                            clientIP: origin.clientIP, scheme: scheme, requestID: requestID, http2: mirrorCluster.http2,
                            upstreamTLS: mirrorCluster.tls != nil, authentication: security.headerChanges,
                            clientCert: ClientCertForwarding(mode: snapshot.settings.forwardClientCertDetails,
                                                             current: origin.tls?.clientCertDetails),
                            metrics: loop.metrics, allocator: allocator) else { continue }
                    forwarding.mirrors.append(Dispatch.Forwarding(
                        request: copy, cluster: mirrorCluster, snapshotVersion: snapshot.version, responseMutations: [],
                        timeout: route.timeoutNanoseconds.map { .nanoseconds($0) }))
                }
            }
            return .forward(forwarding)
        }
    }

    /// The route's rewrite for a mirror's copy: its Host gets Envoy's `-shadow` suffix (before the port),
    /// so the mirror can tell copies from live traffic.
    static func shadowRewrite(_ rewrite: Rewrite?, authority: String) -> Rewrite {
        var shadow = rewrite ?? Rewrite()
        let (host, port) = Authority.split(shadow.authority ?? authority)
        let named = host.contains(":") ? "[\(host)]" : host
        shadow.authority = "\(named)-shadow" + (port.map { ":\($0)" } ?? "")
        return shadow
    }

    /// A route regex that hit its match limit decided nothing: refusing is the only answer that an
    /// attacker's input cannot turn into "the next route" or "not excluded" (fail closed).
    static func refuseUndecidedRegex(_ loop: LoopContext) -> Dispatch {
        loop.metrics.record(.regexMatchLimit)
        return .reply(.regexMatchLimit, route: nil)
    }

    /// `application/grpc`, `application/grpc+proto`, `application/grpc-web…`: Istio's `grpc` protocol.
    static func isGRPC(_ contentType: UnsafeRawBufferPointer) -> Bool {
        let prefix = "application/grpc".utf8
        guard contentType.count >= prefix.count else { return false }
        return zip(contentType, prefix).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }
}
