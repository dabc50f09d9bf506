/// EnvoyFilter as Istio's local rate limit recipe writes it (see `EnvoyFilterSpec`). An EnvoyFilter that
/// applies to this gateway must be that recipe, field for field, or it is refused naming what is not
/// supported: a patch the gateway did not apply would leave traffic unprotected that its author meant
/// to protect. Patches for sidecars (`SIDECAR_INBOUND`, `SIDECAR_OUTBOUND`), and EnvoyFilters scoped to
/// other workloads, do nothing at a gateway in Istio either: they load, with a warning or listed as not
/// applicable, so the YAML a cluster already has loads unchanged.
public enum EnvoyFilterChecks {
    public static let localRateLimit = "envoy.filters.http.local_ratelimit"
    public static let connectionManager = "envoy.filters.network.http_connection_manager"
    static let recipe = "only Istio's local rate limit recipe is enforced (HTTP_FILTER inserting "
        + "envoy.filters.http.local_ratelimit, HTTP_ROUTE merging its typed_per_filter_config); "
        + "refusing to load a configuration it would not enforce"

    /// Whether `filter` applies to the gateway the Bootstrap describes: its namespace or the root
    /// namespace, and a `workloadSelector` matching the Bootstrap labels or a `targetRefs` naming it.
    public static func applies(_ filter: Resource<EnvoyFilterSpec>, bootstrap: Resource<BootstrapSpec>?) -> Bool {
        GatewayScope(bootstrap: bootstrap).admits(namespace: filter.namespace, selector: filter.spec.workloadSelector?.labels,
                                                  targetRefs: filter.spec.targetRefs ?? [])
    }

    /// Whether the patch can apply to a gateway's configuration (context GATEWAY or ANY).
    public static func forGateway(_ patch: EnvoyFilterSpec.ConfigPatch) -> Bool {
        let context = patch.match?.context ?? .ANY
        return context == .ANY || context == .GATEWAY
    }

    /// Whether the patch inserts the local rate limit HTTP filter.
    public static func insertsLocalRateLimit(_ patch: EnvoyFilterSpec.ConfigPatch) -> Bool {
        patch.applyTo == .HTTP_FILTER && patch.patch?.value?.name == localRateLimit && forGateway(patch)
    }

    static func check(_ filter: Resource<EnvoyFilterSpec>, set: ConfigSet) -> [Diagnostic] {
        guard applies(filter, bootstrap: set.bootstrap) else { return [] }
        var out: [Diagnostic] = []
        func error(_ path: String, _ message: String) { out.append(filter.diagnostic(path, message)) }
        let patches = filter.spec.configPatches ?? []
        if patches.isEmpty { error("spec.configPatches", "an EnvoyFilter needs at least one patch") }
        // Per-route configs need the filter in the chain: Envoy ignores them otherwise.
        let filterInserted = set.envoyFilters.contains { other in
            applies(other, bootstrap: set.bootstrap) && (other.spec.configPatches ?? []).contains(where: insertsLocalRateLimit)
        }
        for (index, patch) in patches.enumerated() {
            let path = "spec.configPatches[\(index)]"
            guard forGateway(patch) else {
                out.append(filter.diagnostic("\(path).match.context", "a \(patch.match?.context?.rawValue ?? "") patch "
                    + "applies to sidecars: Istio does not apply it to a gateway, and neither does Gatehouse", severity: .warning))
                continue
            }
            if patch.match?.proxy != nil { error("\(path).match.proxy", "match.proxy is not supported: \(recipe)") }
            if patch.patch?.filterClass != nil {
                error("\(path).patch.filterClass", "filterClass (where Istio places the filter) is not supported: \(recipe)")
            }
            if patch.match?.cluster != nil { error("\(path).match.cluster", "match.cluster is not supported: \(recipe)") }
            switch patch.applyTo {
            case .HTTP_FILTER?: out += httpFilter(patch, path, filter)
            case .HTTP_ROUTE?:
                out += httpRoute(patch, path, filter)
                if !filterInserted {
                    error("\(path).patch.value.typed_per_filter_config", "no EnvoyFilter inserts \(localRateLimit) into the "
                        + "gateway's HTTP filters, so Envoy would ignore this per-route configuration: add the HTTP_FILTER patch "
                        + "of Istio's recipe")
                }
            case let other?: error("\(path).applyTo", "applyTo \(other.rawValue) is not supported: \(recipe)")
            case nil: if !filter.hasDecodeErrors { error("\(path).applyTo", "missing required field \"applyTo\"") }
            }
        }
        return out
    }

    private static func httpFilter(_ patch: EnvoyFilterSpec.ConfigPatch, _ path: String,
                                   _ filter: Resource<EnvoyFilterSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func error(_ where_: String, _ message: String) { out.append(filter.diagnostic(where_, message)) }
        if patch.match?.routeConfiguration != nil {
            error("\(path).match.routeConfiguration", "an HTTP_FILTER patch matches a listener, not a route configuration")
        }
        if let listener = patch.match?.listener {
            let here = "\(path).match.listener"
            for (field, set) in [("portName", listener.portName != nil), ("listenerFilter", listener.listenerFilter != nil),
                                 ("name", listener.name != nil)] where set {
                error("\(here).\(field)", "\(field) is not supported: match a listener by portNumber")
            }
            if let chain = listener.filterChain {
                for (field, set) in [("name", chain.name != nil), ("sni", chain.sni != nil),
                                     ("transportProtocol", chain.transportProtocol != nil),
                                     ("applicationProtocols", chain.applicationProtocols != nil),
                                     ("destinationPort", chain.destinationPort != nil)] where set {
                    error("\(here).filterChain.\(field)", "\(field) is not supported: \(recipe)")
                }
                if let name = chain.filter?.name, name != connectionManager {
                    error("\(here).filterChain.filter.name", "\"\(name)\": an HTTP filter is inserted into \(connectionManager)")
                }
            }
        }
        let operation = patch.patch?.operation
        if ![.INSERT_BEFORE, .INSERT_AFTER, .INSERT_FIRST, .ADD].contains(operation) {
            error("\(path).patch.operation", operation.map { "operation \($0.rawValue) is not supported for an HTTP_FILTER: \(recipe)" }
                ?? "missing required field \"operation\"")
        }
        guard let value = patch.patch?.value else {
            if !filter.hasDecodeErrors { error("\(path).patch.value", "missing required field \"value\"") }
            return out
        }
        if value.name != localRateLimit {
            error("\(path).patch.value.name", "\(value.name.map { "\"\($0)\"" } ?? "a filter without a name"): \(recipe)")
        }
        if value.typedPerFilterConfig != nil {
            error("\(path).patch.value.typed_per_filter_config", "typed_per_filter_config belongs in an HTTP_ROUTE patch")
        }
        if value.route != nil { error("\(path).patch.value.route", "route belongs in an HTTP_ROUTE patch") }
        if let typed = value.typedConfig {
            out += typedConfig(typed, "\(path).patch.value.typed_config", filter, bucketRequired: false)
        } else if !filter.hasDecodeErrors {
            error("\(path).patch.value.typed_config", "missing required field \"typed_config\"")
        }
        return out
    }

    private static func httpRoute(_ patch: EnvoyFilterSpec.ConfigPatch, _ path: String,
                                  _ filter: Resource<EnvoyFilterSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func error(_ where_: String, _ message: String) { out.append(filter.diagnostic(where_, message)) }
        if patch.match?.listener != nil {
            error("\(path).match.listener", "an HTTP_ROUTE patch matches a routeConfiguration, not a listener")
        }
        if let routes = patch.match?.routeConfiguration {
            let here = "\(path).match.routeConfiguration"
            for (field, set) in [("portName", routes.portName != nil), ("gateway", routes.gateway != nil),
                                 ("name", routes.name != nil), ("vhost.domainName", routes.vhost?.domainName != nil)] where set {
                error("\(here).\(field)", "\(field) is not supported: match routes by portNumber, vhost.name and vhost.route.name")
            }
            if let name = routes.vhost?.name, hostAndPort(name) == nil {
                error("\(here).vhost.name", "\"\(name)\": a gateway's virtual host is named HOST:PORT (e.g. \"bookinfo.com:80\")")
            }
        }
        if patch.patch?.operation != .MERGE {
            error("\(path).patch.operation", patch.patch?.operation.map { "operation \($0.rawValue) is not supported for an HTTP_ROUTE: \(recipe)" }
                ?? "missing required field \"operation\"")
        }
        guard let value = patch.patch?.value else {
            if !filter.hasDecodeErrors { error("\(path).patch.value", "missing required field \"value\"") }
            return out
        }
        if value.name != nil { error("\(path).patch.value.name", "an HTTP_ROUTE patch merges typed_per_filter_config; name is not supported") }
        if value.typedConfig != nil { error("\(path).patch.value.typed_config", "typed_config belongs in an HTTP_FILTER patch") }
        let configs = value.typedPerFilterConfig ?? [:]
        if configs.isEmpty, !filter.hasDecodeErrors {
            error("\(path).patch.value.typed_per_filter_config", "missing required field \"typed_per_filter_config\"")
        }
        for (name, typed) in configs.sorted(by: { $0.key < $1.key }) {
            let here = "\(path).patch.value.typed_per_filter_config.\(name)"
            guard name == localRateLimit else {
                error(here, "per-route configuration of \"\(name)\" is not supported: \(recipe)")
                continue
            }
            out += typedConfig(typed, here, filter, bucketRequired: true)
            if typed.localRateLimit?.descriptors?.isEmpty == false, (value.route?.rateLimits ?? []).isEmpty {
                error("\(path).patch.value.route.rate_limits", "descriptors match the descriptors a route's rate_limits "
                    + "actions make: without route.rate_limits in this patch they never match")
            }
        }
        if let limits = value.route?.rateLimits { out += rateLimits(limits, "\(path).patch.value.route.rate_limits", filter) }
        return out
    }

    private static func typedConfig(_ typed: EnvoyFilterSpec.TypedConfig, _ path: String, _ filter: Resource<EnvoyFilterSpec>,
                                    bucketRequired: Bool) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func error(_ where_: String, _ message: String) { out.append(filter.diagnostic(where_, message)) }
        let wrapped = typed.type.map { EnvoyFilterSpec.TypedConfig.typedStructTypes.contains($0) } ?? false
        if !wrapped, typed.type != EnvoyFilterSpec.TypedConfig.localRateLimitType {
            error("\(path).@type", "\(typed.type.map { "\"\($0)\"" } ?? "no @type"): expected "
                + "\(EnvoyFilterSpec.TypedConfig.localRateLimitType), or a TypedStruct with that type_url")
            return out
        }
        if wrapped, typed.typeURL != EnvoyFilterSpec.TypedConfig.localRateLimitType {
            error("\(path).type_url", "\(typed.typeURL.map { "\"\($0)\"" } ?? "no type_url"): expected "
                + EnvoyFilterSpec.TypedConfig.localRateLimitType)
        }
        guard let limit = typed.localRateLimit else {
            if !filter.hasDecodeErrors { error(wrapped ? "\(path).value" : path, "missing the LocalRateLimit configuration") }
            return out
        }
        let here = wrapped ? "\(path).value" : path
        if (limit.statPrefix ?? "").isEmpty { error("\(here).stat_prefix", "missing required field \"stat_prefix\"") }
        if let bucket = limit.tokenBucket {
            out += tokenBucket(bucket, "\(here).token_bucket", filter)
        } else if bucketRequired {
            error("\(here).token_bucket", "a per-route local rate limit needs a token_bucket (Envoy rejects one without)")
        }
        if let descriptors = limit.descriptors {
            if !bucketRequired {
                error("\(here).descriptors", "descriptors are supported in a per-route configuration (an HTTP_ROUTE patch "
                    + "with route.rate_limits), not in the filter's: refusing to load a configuration it would not enforce")
            }
            for (index, descriptor) in descriptors.enumerated() {
                let at = "\(here).descriptors[\(index)]"
                let entries = descriptor.entries ?? []
                if entries.isEmpty { error("\(at).entries", "a descriptor needs at least one entry") }
                for (position, entry) in entries.enumerated() where (entry.key ?? "").isEmpty || (entry.value ?? "").isEmpty {
                    error("\(at).entries[\(position)]", entry.value == "" && !(entry.key ?? "").isEmpty
                        ? "an empty value (Envoy's wildcard: a bucket per value) is not supported; refusing to load a "
                            + "configuration it would not enforce (a RateLimitPolicy rule with a key does the same)"
                        : "an entry needs a key and a value")
                }
                if let bucket = descriptor.tokenBucket {
                    out += tokenBucket(bucket, "\(at).token_bucket", filter)
                } else {
                    error("\(at).token_bucket", "missing required field \"token_bucket\"")
                }
            }
        }
        if limit.localRateLimitPerDownstreamConnection == true {
            error("\(here).local_rate_limit_per_downstream_connection", "a token bucket per downstream connection is not supported; "
                + "refusing to load a configuration it would not enforce")
        }
        if let stage = limit.stage, stage != 0 { error("\(here).stage", "only stage 0 is supported") }
        for (index, option) in (limit.responseHeadersToAdd ?? []).enumerated() {
            let key = option.header?.key ?? ""
            if key.isEmpty || !key.allSatisfy(\.isHTTPTokenCharacter) {
                error("\(here).response_headers_to_add[\(index)].header.key", "expected a header name, got \"\(key)\"")
            }
        }
        if limit.tokenBucket != nil, (limit.filterEnabled?.defaultValue?.perMillion ?? 0) == 0 {
            out.append(filter.diagnostic("\(here).filter_enabled", "filter_enabled is unset or 0%: Envoy applies this rate "
                + "limit to no request (its default, for safety), and so does Gatehouse", severity: .warning))
        }
        return out
    }

    private static func tokenBucket(_ bucket: EnvoyFilterSpec.TokenBucket, _ path: String,
                                    _ filter: Resource<EnvoyFilterSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if (bucket.maxTokens ?? 0) == 0 { out.append(filter.diagnostic("\(path).max_tokens", "must be at least 1")) }
        if bucket.tokensPerFill == 0 { out.append(filter.diagnostic("\(path).tokens_per_fill", "must be at least 1")) }
        if let interval = bucket.fillInterval {
            if interval.nanoseconds < 50_000_000 {
                out.append(filter.diagnostic("\(path).fill_interval", "must be at least 50ms (as Envoy requires)"))
            } else if let tokens = bucket.maxTokens, tokens > 0,
                      Int64(tokens) > RateLimitPolicyChecks.refillLimit / max(1, interval.nanoseconds / Int64(max(1, bucket.tokensPerFill ?? 1))) {
                out.append(filter.diagnostic("\(path).max_tokens", "\(tokens) tokens take more than a century to refill at this rate"))
            }
        } else {
            out.append(filter.diagnostic("\(path).fill_interval", "missing required field \"fill_interval\""))
        }
        return out
    }

    /// A route's `rate_limits`: each a list of actions, each action one of request_headers, remote_address
    /// and generic_key (others are unknown fields).
    private static func rateLimits(_ limits: [EnvoyFilterSpec.RateLimit], _ path: String,
                                   _ filter: Resource<EnvoyFilterSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func error(_ where_: String, _ message: String) { out.append(filter.diagnostic(where_, message)) }
        for (index, limit) in limits.enumerated() {
            let at = "\(path)[\(index)]"
            if let stage = limit.stage, stage != 0 { error("\(at).stage", "only stage 0 is supported") }
            let actions = limit.actions ?? []
            if actions.isEmpty, !filter.hasDecodeErrors { error("\(at).actions", "a rate limit needs at least one action") }
            for (position, action) in actions.enumerated() {
                let here = "\(at).actions[\(position)]"
                let set = [action.requestHeaders != nil, action.remoteAddress != nil, action.genericKey != nil].filter { $0 }.count
                if set != 1, !filter.hasDecodeErrors {
                    error(here, "an action is exactly one of request_headers, remote_address, generic_key")
                }
                if let headers = action.requestHeaders {
                    let name = headers.headerName ?? ""
                    let plain = name.hasPrefix(":") ? String(name.dropFirst()) : name
                    if plain.isEmpty || !plain.allSatisfy(\.isHTTPTokenCharacter) {
                        error("\(here).request_headers.header_name", "expected a header name, got \"\(name)\"")
                    }
                    if (headers.descriptorKey ?? "").isEmpty {
                        error("\(here).request_headers.descriptor_key", "missing required field \"descriptor_key\"")
                    }
                }
                if let generic = action.genericKey, (generic.descriptorValue ?? "").isEmpty {
                    error("\(here).generic_key.descriptor_value", "missing required field \"descriptor_value\"")
                }
            }
        }
        return out
    }

    /// `HOST:PORT` of a virtual host name; nil when it has no numeric port.
    public static func hostAndPort(_ name: String) -> (host: String, port: Int)? {
        guard let colon = name.lastIndex(of: ":"), let port = Int(name[name.index(after: colon)...]),
              (1...65535).contains(port), colon != name.startIndex else { return nil }
        return (String(name[..<colon]).lowercased(), port)
    }
}
