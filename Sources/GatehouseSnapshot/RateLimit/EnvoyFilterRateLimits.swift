import GatehouseConfig
import GatehouseRateLimit

/// Istio's local rate limit recipe, compiled into rate-limit rules with Envoy's semantics: an HTTP_FILTER
/// patch's `token_bucket` is one bucket for every request through the gateway's HTTP listeners (or the
/// patch's `portNumber`), except on routes an HTTP_ROUTE patch configures, which get a bucket of their own
/// (Envoy's per-route configuration replaces the filter's). A bucket holds `max_tokens`, refilled at
/// `tokens_per_fill` per `fill_interval` as Envoy's timer-less bucket does; `filter_enabled` and
/// `filter_enforced` are the shares of requests it applies to and refuses (0% when unset, as in Envoy).
/// The refusal is Envoy's: the configured status (429 below 400), `local_rate_limited`, flag RL,
/// `x-envoy-ratelimited`, the `response_headers_to_add`, and `x-ratelimit-*` only with
/// `enable_x_ratelimit_headers: DRAFT_VERSION_03`.
enum EnvoyFilterRateLimits {
    struct Compiled {
        var rules: [RateLimitRule] = []
        /// `ns/name` of the EnvoyFilters that applied.
        var filters: [String] = []
    }

    private struct Patch {
        var filter: Resource<EnvoyFilterSpec>
        var patch: EnvoyFilterSpec.ConfigPatch
        var config: EnvoyFilterSpec.LocalRateLimit
        var scope: RateLimitScope?
    }

    static func compile(_ set: ConfigSet) -> Compiled {
        // Istio's order: priority, then the root namespace's filters before the workload's, then name.
        let root = set.bootstrap?.spec.rootNamespace ?? "istio-system"
        let filters = set.envoyFilters.filter { EnvoyFilterChecks.applies($0, bootstrap: set.bootstrap) }.sorted {
            ($0.spec.priority ?? 0, $0.namespace == root ? 0 : 1, $0.namespace, $0.name)
                < ($1.spec.priority ?? 0, $1.namespace == root ? 0 : 1, $1.namespace, $1.name)
        }
        var filterWide: [Patch] = []
        var perRoute: [Patch] = []
        for filter in filters {
            for patch in filter.spec.configPatches ?? [] where EnvoyFilterChecks.forGateway(patch) {
                switch patch.applyTo {
                case .HTTP_FILTER?:
                    guard let config = patch.patch?.value?.typedConfig?.localRateLimit else { continue }
                    let port = patch.match?.listener?.portNumber.map { Int($0) }
                    filterWide.append(Patch(filter: filter, patch: patch, config: config,
                                            scope: port.map { RateLimitScope(port: $0) }))
                case .HTTP_ROUTE?:
                    guard let config = patch.patch?.value?.typedPerFilterConfig?[EnvoyFilterChecks.localRateLimit]?
                        .localRateLimit else { continue }
                    perRoute.append(Patch(filter: filter, patch: patch, config: config, scope: routeScope(patch)))
                default:
                    continue
                }
            }
        }
        var out = Compiled(filters: filters.map(\.id))
        let overridden = perRoute.compactMap(\.scope)
        var seen: Set<String> = []
        for entry in filterWide + perRoute {
            guard let algorithm = algorithm(entry.config.tokenBucket) else { continue }
            var statPrefix = entry.config.statPrefix ?? "local_rate_limit"
            // Two buckets of one EnvoyFilter may share a stat_prefix (Envoy sums their stats); here each
            // keeps its own counter.
            var suffix = 2
            while seen.contains("\(entry.filter.id)/\(statPrefix)") {
                statPrefix = "\(entry.config.statPrefix ?? "local_rate_limit")-\(suffix)"
                suffix += 1
            }
            seen.insert("\(entry.filter.id)/\(statPrefix)")
            let isRouteLevel = entry.patch.applyTo == .HTTP_ROUTE
            let enabled = entry.config.filterEnabled?.defaultValue?.perMillion ?? 0
            let enforced = entry.config.filterEnforced?.defaultValue?.perMillion ?? 0
            // Descriptor buckets first (in Envoy a request takes from each that matches), then the default.
            let actions = (entry.patch.patch?.value?.route?.rateLimits ?? []).map(descriptorActions)
            let descriptors = isRouteLevel ? (entry.config.descriptors ?? []) : []
            let entries = descriptors.map { ($0.entries ?? []).map { DescriptorEntry(key: $0.key ?? "", value: $0.value ?? "") } }
            for (index, descriptor) in descriptors.enumerated() {
                guard let bucket = Self.algorithm(descriptor.tokenBucket) else { continue }
                out.rules.append(RateLimitRule(
                    envoyFilter: entry.filter.namespace, name: entry.filter.name, statPrefix: "\(statPrefix)/descriptor[\(index)]",
                    algorithm: bucket, scope: entry.scope, exclusions: [], enabledPerMillion: enabled,
                    enforcedPerMillion: enforced, reply: reply(entry.config),
                    descriptors: DescriptorMatch(actions: actions, entries: entries[index])))
            }
            out.rules.append(RateLimitRule(
                envoyFilter: entry.filter.namespace, name: entry.filter.name, statPrefix: statPrefix, algorithm: algorithm,
                scope: entry.scope, exclusions: isRouteLevel ? [] : overridden,
                enabledPerMillion: enabled, enforcedPerMillion: enforced, reply: reply(entry.config),
                descriptors: descriptors.isEmpty ? nil : DescriptorMatch(
                    actions: actions, entries: nil, siblings: entries,
                    onlyWhenNoneMatched: entry.config.alwaysConsumeDefaultTokenBucket == false)))
        }
        return out
    }

    static func descriptorActions(_ limit: EnvoyFilterSpec.RateLimit) -> [DescriptorAction] {
        (limit.actions ?? []).compactMap { action in
            if let headers = action.requestHeaders, let name = headers.headerName, let key = headers.descriptorKey {
                return .requestHeader(name: name.lowercased(), key: key, skipIfAbsent: headers.skipIfAbsent ?? false)
            }
            if action.remoteAddress != nil { return .remoteAddress }
            if let generic = action.genericKey, let value = generic.descriptorValue {
                return .genericKey(key: generic.descriptorKey ?? "generic_key", value: value)
            }
            return nil
        }
    }

    static func algorithm(_ bucket: EnvoyFilterSpec.TokenBucket?) -> RateLimitAlgorithm? {
        guard let bucket, let maxTokens = bucket.maxTokens, maxTokens > 0,
              let interval = bucket.fillInterval?.nanoseconds, interval > 0 else { return nil }
        let perFill = Int(bucket.tokensPerFill ?? 1)
        guard perFill > 0, interval / Int64(perFill) > 0 else { return nil }
        return .bucket(TokenBucketPolicy(requests: perFill, unitNanoseconds: interval, burst: Int(maxTokens)))
    }

    static func reply(_ config: EnvoyFilterSpec.LocalRateLimit) -> RateLimitReply {
        var reply = RateLimitReply()
        let status = Int(config.status?.code ?? 429)
        reply.status = status < 400 ? 429 : status
        let draft = config.enableXRatelimitHeaders == .DRAFT_VERSION_03
        reply.limitHeaders = draft
        reply.allowedHeaders = draft
        reply.retryAfter = false
        reply.envoyRateLimited = true
        reply.headers = (config.responseHeadersToAdd ?? []).compactMap { option in
            guard let key = option.header?.key else { return nil }
            return (key.lowercased(), option.header?.value ?? "")
        }
        reply.grpcStatus = config.rateLimitedAsResourceExhausted == true ? 8 : 14
        return reply
    }

    static func routeScope(_ patch: EnvoyFilterSpec.ConfigPatch) -> RateLimitScope {
        let match = patch.match?.routeConfiguration
        var scope = RateLimitScope(port: match?.portNumber.map { Int($0) }, needsRoute: true)
        if let name = match?.vhost?.name, let (host, port) = EnvoyFilterChecks.hostAndPort(name) {
            scope.virtualHost = host
            if let other = scope.port, other != port { scope.port = -1 } else { scope.port = port }
        }
        scope.routeName = match?.vhost?.route?.name
        scope.action = switch match?.vhost?.route?.action {
        case .ROUTE?: .route
        case .REDIRECT?: .redirect
        case .DIRECT_RESPONSE?: .directResponse
        case .ANY?, nil: nil
        }
        return scope
    }
}
