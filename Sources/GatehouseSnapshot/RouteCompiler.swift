import Foundation
import GatehouseConfig
import GatehouseRegex
import GatehouseRouting
import GatehouseUpstream

/// Binds VirtualServices to the Gateway servers of one port and compiles their http routes, following
/// Istio: a VirtualService applies only to gateways it lists; the virtual host is the intersection of the
/// server's and the VirtualService's hosts; routes of several VirtualServices for one host are
/// concatenated and catch-all routes move to the end.
struct RouteCompiler {
    let set: ConfigSet
    let catalog: ServiceCatalog

    func virtualHosts(for servers: [SnapshotCompiler.BoundServer], port: Int,
                      clusters: inout ClusterCompiler) throws -> [VirtualHost] {
        var order: [String] = []
        var routesByDomain: [String: [Route]] = [:]
        var redirectDomains: Set<String> = []
        var seen: Set<String> = []
        for bound in servers {
            let gateway = bound.gateway
            for vs in set.virtualServices where set.appliesToGateway(vs) {
                let references = vs.spec.gateways ?? []
                guard references.contains(where: { ServiceCatalog.gatewayID($0, namespace: vs.namespace) == gateway.id }) else { continue }
                for serverHost in bound.server.hosts ?? [] {
                    let (namespaceFilter, host) = Self.splitServerHost(serverHost)
                    if let filter = namespaceFilter,
                       !Self.namespaceAllowed(filter, virtualService: vs.namespace, gateway: gateway.namespace) {
                        continue
                    }
                    for vsHost in vs.spec.hosts ?? [] {
                        guard let domain = Self.intersect(host.lowercased(), vsHost.lowercased()) else { continue }
                        if bound.server.tls?.httpsRedirect == true { redirectDomains.insert(domain) }
                        guard seen.insert("\(domain)|\(vs.id)").inserted else { continue }
                        if routesByDomain[domain] == nil { order.append(domain) }
                        var routes: [Route] = []
                        for http in vs.spec.http ?? [] {
                            if let route = try compile(http, in: vs, gateway: gateway, port: port, clusters: &clusters) {
                                routes.append(route)
                            }
                        }
                        routesByDomain[domain, default: []] += routes
                    }
                }
            }
        }
        return order.map { domain in
            let routes = routesByDomain[domain] ?? []
            // Stable: specific routes keep their order, catch-alls follow in theirs.
            let sorted = routes.filter { !$0.isCatchAll } + routes.filter(\.isCatchAll)
            return VirtualHost(domain: domain, routes: sorted, httpsRedirect: redirectDomains.contains(domain))
        }
    }

    /// A server host `ns/host` admits VirtualServices of `ns` only (`*` any, `.` the Gateway's own).
    static func namespaceAllowed(_ filter: String, virtualService: String, gateway: String) -> Bool {
        filter == "*" || (filter == "." ? virtualService == gateway : virtualService == filter)
    }

    static func splitServerHost(_ entry: String) -> (namespace: String?, host: String) {
        let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : (nil, entry)
    }

    /// Istio's `sourceMatchHTTP` at a gateway: a match without `gateways` keeps only if its `sourceLabels`
    /// are among the gateway's own labels and its `sourceNamespace` is the gateway's namespace.
    static func sourceMatches(_ match: HTTPMatchRequest, proxyLabels: [String: String], proxyNamespace: String) -> Bool {
        guard (match.sourceLabels ?? [:]).allSatisfy({ proxyLabels[$0.key] == $0.value }) else { return false }
        return match.sourceNamespace.map { $0.isEmpty || $0 == proxyNamespace } ?? true
    }

    /// The more specific of two host patterns when one contains the other, else nil.
    static func intersect(_ a: String, _ b: String) -> String? {
        if a == b { return a }
        if a == "*" { return b }
        if b == "*" { return a }
        func covers(_ wildcard: String, _ other: String) -> Bool {
            wildcard.hasPrefix("*.") && other.hasSuffix(String(wildcard.dropFirst(1)))
        }
        if covers(a, b) { return b }
        if covers(b, a) { return a }
        return nil
    }

    func compile(_ http: HTTPRoute, in vs: Resource<VirtualServiceSpec>, gateway: Resource<GatewaySpec>,
                 port: Int, clusters: inout ClusterCompiler) throws -> Route? {
        var matches: [RouteMatch] = []
        for entry in http.match ?? [] {
            if let gateways = entry.gateways, !gateways.isEmpty {
                if !gateways.contains(where: { ServiceCatalog.gatewayID($0, namespace: vs.namespace) == gateway.id }) { continue }
            } else if !Self.sourceMatches(entry, proxyLabels: set.bootstrap?.spec.labels ?? [:], proxyNamespace: set.gatewayNamespace) {
                continue
            }
            if let wanted = entry.port, Int(wanted) != port { continue }
            matches.append(try compile(entry))
        }
        if let entries = http.match, !entries.isEmpty, matches.isEmpty { return nil }

        let action: RouteAction
        if let redirect = http.redirect {
            action = .redirect(RedirectAction(
                uri: redirect.uri, authority: redirect.authority, scheme: redirect.scheme,
                port: redirect.port.map(Int.init),
                derivePort: redirect.derivePort.map { $0 == .FROM_REQUEST_PORT ? .fromRequestPort : .fromProtocolDefault },
                code: Int(redirect.redirectCode ?? 301)))
        } else if let direct = http.directResponse {
            let body: [UInt8]
            if let bytes = direct.body?.bytes { body = Array(Data(base64Encoded: bytes) ?? Data()) }
            else { body = Array((direct.body?.string ?? "").utf8) }
            action = .directResponse(status: Int(direct.status), body: body)
        } else {
            var destinations: [WeightedDestination] = []
            for entry in http.route ?? [] {
                let cluster = clusters.reference(entry.destination, namespace: vs.namespace)
                destinations.append(WeightedDestination(
                    cluster: cluster.name, clusterIndex: cluster.index,
                    weight: Int(entry.weight ?? 0),
                    requestHeaders: Self.mutation(entry.headers?.request),
                    responseHeaders: Self.mutation(entry.headers?.response)))
            }
            var rewrite: Rewrite?
            if let spec = http.rewrite {
                var regex: (CompiledRegex, template: String)?
                if let regexRewrite = spec.uriRegexRewrite, let pattern = regexRewrite.match {
                    regex = (try set.regexes.compile(pattern, mode: .search), regexRewrite.rewrite ?? "")
                }
                rewrite = Rewrite(uri: spec.uri, regex: regex, authority: spec.authority)
            }
            action = .forward(ForwardAction(destinations: destinations, rewrite: rewrite))
        }
        var mirrors: [MirrorPolicy] = []
        if case .forward = action {
            if let mirror = http.mirror {
                let cluster = clusters.reference(mirror, namespace: vs.namespace)
                let share = Self.perMillion(http.mirrorPercentage, fallback: http.mirrorPercent.map { Int32(clamping: $0) } ?? 100)
                mirrors.append(MirrorPolicy(cluster: cluster.name, clusterIndex: cluster.index, perMillion: share))
            }
            for mirror in http.mirrors ?? [] {
                let cluster = clusters.reference(mirror.destination, namespace: vs.namespace)
                mirrors.append(MirrorPolicy(cluster: cluster.name, clusterIndex: cluster.index,
                                            perMillion: Self.perMillion(mirror.percentage, fallback: 100)))
            }
        }
        var route = Route(name: http.name, matches: matches, action: action,
                     requestHeaders: Self.mutation(http.headers?.request),
                     responseHeaders: Self.mutation(http.headers?.response),
                     timeoutNanoseconds: http.timeout.flatMap { $0.nanoseconds > 0 ? $0.nanoseconds : nil },
                     fault: http.fault.flatMap(Self.fault),
                     cors: try http.corsPolicy.map(cors),
                     retryPolicy: Self.retryPolicy(http.retries))
        route.mirrors = mirrors.filter { $0.perMillion > 0 }
        return route
    }

    func cors(_ spec: CorsPolicy) throws -> CORSPolicy {
        var origins: [StringMatcher] = []
        for match in spec.allowOrigins ?? [] {
            if let exact = match.exact { origins.append(.exact(exact)) }
            else if let prefix = match.prefix { origins.append(.prefix(prefix)) }
            else if let suffix = match.suffix { origins.append(.suffix(suffix)) }
            else if let regex = match.regex { origins.append(.regex(try set.regexes.compile(regex))) }
        }
        origins += (spec.allowOrigin ?? []).map { $0 == "*" ? .present : .exact($0) }
        func joined(_ values: [String]?) -> String? { values.flatMap { $0.isEmpty ? nil : $0.joined(separator: ",") } }
        return CORSPolicy(origins: origins, allowMethods: joined(spec.allowMethods), allowHeaders: joined(spec.allowHeaders),
                          exposeHeaders: joined(spec.exposeHeaders),
                          maxAge: spec.maxAge.map { String($0.nanoseconds / 1_000_000_000) },
                          allowCredentials: spec.allowCredentials ?? false,
                          forwardsUnmatchedPreflights: spec.unmatchedPreflights != .IGNORE)
    }

    /// `retries` as Istio hands them to Envoy (route/retry/retry.go): none written is Istio's default
    /// policy; `attempts` 0 turns retries off; a written `retryOn` replaces the default conditions and
    /// status codes (a bare status code also turns on `retriable-status-codes`).
    static func retryPolicy(_ spec: HTTPRetry?) -> RetryPolicy? {
        guard let spec else { return .istioDefault }
        guard !spec.turnsRetriesOff, let attempts = spec.attempts else { return nil }
        var policy = RetryPolicy.istioDefault
        policy.retries = Int(attempts)
        if let retryOn = spec.retryOn, !retryOn.isEmpty {
            let parsed = HTTPRetry.parseRetryOn(retryOn)
            policy.conditions = parsed.conditions.reduce(into: []) { conditions, name in
                if let condition = HTTPRetry.Condition(rawValue: name) { conditions.insert(Self.retryCondition(condition)) }
            }
            policy.statusCodes = parsed.statusCodes
            if !parsed.statusCodes.isEmpty { policy.conditions.insert(.retriableStatusCodes) }
        }
        policy.perTryTimeoutNanoseconds = spec.perTryTimeout?.nanoseconds
        if let backoff = spec.backoff { policy.backoffBaseNanoseconds = backoff.nanoseconds }
        policy.avoidsPreviousHosts = spec.retryIgnorePreviousHosts
        policy.avoidsPreviousPriorities = spec.retryRemoteLocalities == true
        return policy
    }

    static func retryCondition(_ condition: HTTPRetry.Condition) -> RetryPolicy.Conditions {
        switch condition {
        case .fiveXX: .fiveXX
        case .gatewayError: .gatewayError
        case .reset: .reset
        case .resetBeforeRequest: .resetBeforeRequest
        case .connectFailure: .connectFailure
        case .retriable4xx: .retriable4xx
        case .refusedStream: .refusedStream
        case .retriableStatusCodes: .retriableStatusCodes
        case .envoyRateLimited: .envoyRateLimited
        case .cancelled: .grpcCancelled
        case .deadlineExceeded: .grpcDeadlineExceeded
        case .internal: .grpcInternal
        case .resourceExhausted: .grpcResourceExhausted
        case .unavailable: .grpcUnavailable
        }
    }

    /// `fault` as Istio hands it to Envoy: a percentage unset (and the deprecated integer `percent` 0)
    /// injects nothing.
    /// A percentage as Envoy's per-million fraction; the deprecated integer `fallback` when unset.
    static func perMillion(_ percent: HTTPFaultInjection.Percent?, fallback: Int32? = nil) -> UInt64 {
        if let value = percent?.value { return UInt64((min(max(value, 0), 100) * 10_000).rounded()) }
        return UInt64(min(max(fallback ?? 0, 0), 100)) * 10_000
    }

    static func fault(_ spec: HTTPFaultInjection) -> FaultInjection? {
        let fault = FaultInjection(
            delayNanoseconds: spec.delay?.fixedDelay?.nanoseconds,
            delayPerMillion: perMillion(spec.delay?.percentage, fallback: spec.delay?.percent),
            abortWith: spec.abort?.httpStatus.map { .httpStatus(Int($0)) }
                ?? spec.abort?.grpcStatus.flatMap { HTTPFaultInjection.grpcStatusCodes[$0] }.map { .grpcStatus($0) },
            abortPerMillion: perMillion(spec.abort?.percentage))
        return fault.delayPerMillion == 0 && fault.abortPerMillion == 0 ? nil : fault
    }

    func compile(_ entry: HTTPMatchRequest) throws -> RouteMatch {
        func matcher(_ match: StringMatch?) throws -> StringMatcher? {
            guard let match else { return nil }
            if let exact = match.exact { return .exact(exact) }
            if let prefix = match.prefix { return .prefix(prefix) }
            if let suffix = match.suffix { return .suffix(suffix) }
            if let regex = match.regex { return regex == "*" ? .present : .regex(try set.regexes.compile(regex)) }
            return .present
        }
        func list(_ entries: [String: StringMatch]?, lowercase: Bool) throws -> [(name: String, matcher: StringMatcher)] {
            try (entries ?? [:]).sorted { $0.key < $1.key }.map { (lowercase ? $0.key.lowercased() : $0.key, try matcher($0.value) ?? .present) }
        }
        return RouteMatch(uri: try matcher(entry.uri), ignoreUriCase: entry.ignoreUriCase ?? false,
                          scheme: try matcher(entry.scheme), method: try matcher(entry.method),
                          authority: try matcher(entry.authority),
                          headers: try list(entry.headers, lowercase: true),
                          withoutHeaders: try list(entry.withoutHeaders, lowercase: true),
                          queryParams: try list(entry.queryParams, lowercase: false))
    }

    static func mutation(_ operations: Headers.Operations?) -> HeaderMutation {
        guard let operations else { return .none }
        return HeaderMutation(
            overwrite: (operations.set ?? [:]).sorted { $0.key < $1.key }.map { ($0.key.lowercased(), $0.value) },
            append: (operations.add ?? [:]).sorted { $0.key < $1.key }.map { ($0.key.lowercased(), $0.value) },
            remove: (operations.remove ?? []).map { $0.lowercased() })
    }
}
