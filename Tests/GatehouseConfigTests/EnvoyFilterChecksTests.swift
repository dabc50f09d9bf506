import Testing
@testable import GatehouseConfig

/// EnvoyFilter: Istio's local rate limit recipe loads; every other patch that would apply to the gateway
/// is refused at its field; sidecar patches and filters for other workloads load and do nothing.
@Suite struct EnvoyFilterChecksTests {
    func filter(_ patches: String, selector: String = "") -> String {
        """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata: {name: limits, namespace: istio-system}
        spec:
        \(selector)  configPatches:
        \(patches.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))

        """
    }

    static let recipe = """
        - applyTo: HTTP_FILTER
          match: {context: GATEWAY, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
          patch:
            operation: INSERT_BEFORE
            value:
              name: envoy.filters.http.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                stat_prefix: limiter
                token_bucket: {max_tokens: 10, tokens_per_fill: 5, fill_interval: 1s}
                filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}
                filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
        """

    @Test func theRecipeLoadsWithTheMessageInlineOrInATypedStruct() {
        #expect(errors(in: loadWithBase(filter(Self.recipe))).isEmpty)
        let wrapped = Self.recipe
            .replacingOccurrences(of: "\"@type\": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                                  with: "\"@type\": type.googleapis.com/udpa.type.v1.TypedStruct\n"
                                      + "        type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\n"
                                      + "        value:")
            .replacingOccurrences(of: "        stat_prefix", with: "          stat_prefix")
            .replacingOccurrences(of: "        token_bucket", with: "          token_bucket")
            .replacingOccurrences(of: "        filter_", with: "          filter_")
        #expect(errors(in: loadWithBase(filter(wrapped))).isEmpty, "\(wrapped)")
    }

    @Test(arguments: [
        ("envoy.filters.http.local_ratelimit", "envoy.filters.http.lua", "spec.configPatches[0].patch.value.name"),
        ("INSERT_BEFORE", "REPLACE", "spec.configPatches[0].patch.operation"),
        ("fill_interval: 1s", "fill_interval: 10ms", "spec.configPatches[0].patch.value.typed_config.token_bucket.fill_interval"),
        ("max_tokens: 10", "max_tokens: 0", "spec.configPatches[0].patch.value.typed_config.token_bucket.max_tokens"),
        ("max_tokens: 10, tokens_per_fill: 5, fill_interval: 1s", "max_tokens: 4294967295, tokens_per_fill: 1, fill_interval: 3600s",
         "spec.configPatches[0].patch.value.typed_config.token_bucket.max_tokens"),
        ("stat_prefix: limiter", "stat_prefix: limiter\n        descriptors: [{entries: [{key: a, value: b}]}]",
         "spec.configPatches[0].patch.value.typed_config.descriptors"),
        ("stat_prefix: limiter", "stat_prefix: limiter\n        local_rate_limit_per_downstream_connection: true",
         "spec.configPatches[0].patch.value.typed_config.local_rate_limit_per_downstream_connection"),
        ("stat_prefix: limiter", "stat_prefix: limiter\n        request_headers_to_add_when_not_enforced: []",
         "spec.configPatches[0].patch.value.typed_config.request_headers_to_add_when_not_enforced"),
        ("applyTo: HTTP_FILTER", "applyTo: NETWORK_FILTER", "spec.configPatches[0].applyTo"),
        ("operation: INSERT_BEFORE", "operation: INSERT_BEFORE\n    filterClass: AUTHZ", "spec.configPatches[0].patch.filterClass"),
        ("context: GATEWAY,", "context: GATEWAY, proxy: {proxyVersion: '^1\\\\.2.*'},", "spec.configPatches[0].match.proxy"),
    ])
    func whatTheGatewayWouldNotEnforceIsRefusedAtItsField(_ original: String, _ replacement: String, _ path: String) {
        let text = filter(Self.recipe.replacingOccurrences(of: original, with: replacement))
        let found = errors(in: loadWithBase(text))
        #expect(found.map(\.path).contains(path), "\(found)")
    }

    @Test func aPerRouteConfigWithoutTheFilterInTheChainIsRefused() {
        let route = """
            - applyTo: HTTP_ROUTE
              match: {context: GATEWAY, routeConfiguration: {vhost: {name: "api.example.com:8080", route: {name: api}}}}
              patch:
                operation: MERGE
                value:
                  typed_per_filter_config:
                    envoy.filters.http.local_ratelimit:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: api
                      token_bucket: {max_tokens: 1, fill_interval: 1s}
            """
        let found = errors(in: loadWithBase(filter(route)))
        #expect(found.map(\.path) == ["spec.configPatches[0].patch.value.typed_per_filter_config"], "\(found)")
        #expect(errors(in: loadWithBase(filter(Self.recipe + "\n" + route))).isEmpty)
        let badHost = route.replacingOccurrences(of: "api.example.com:8080", with: "api.example.com")
        #expect(errors(in: loadWithBase(filter(Self.recipe + "\n" + badHost))).map(\.path)
            == ["spec.configPatches[1].match.routeConfiguration.vhost.name"])
    }

    @Test func sidecarPatchesAndOtherWorkloadsLoadUnchecked() {
        let lua = Self.recipe.replacingOccurrences(of: "envoy.filters.http.local_ratelimit", with: "envoy.filters.http.lua")
        let sidecar = loadWithBase(filter(lua.replacingOccurrences(of: "context: GATEWAY", with: "context: SIDECAR_INBOUND")))
        #expect(errors(in: sidecar).isEmpty)
        #expect(sidecar.contains { $0.severity == .warning && $0.path == "spec.configPatches[0].match.context" })
        let elsewhere = filter(lua, selector: "  workloadSelector: {labels: {app: productpage}}\n")
        #expect(errors(in: loadWithBase(elsewhere)).isEmpty)
    }

    @Test func virtualHostNamesAreHostAndPort() {
        #expect(EnvoyFilterChecks.hostAndPort("Bookinfo.com:80")! == ("bookinfo.com", 80))
        #expect(EnvoyFilterChecks.hostAndPort("*:8080")! == ("*", 8080))
        #expect(EnvoyFilterChecks.hostAndPort("bookinfo.com") == nil)
        #expect(EnvoyFilterChecks.hostAndPort(":80") == nil)
    }

    @Test func routeDescriptorsNeedTheRoutesRateLimitsAndValues() {
        let route = """
            - applyTo: HTTP_ROUTE
              match: {context: GATEWAY, routeConfiguration: {vhost: {name: "*:8080", route: {name: api}}}}
              patch:
                operation: MERGE
                value:
                  route: {rate_limits: [{actions: [{request_headers: {header_name: ":path", descriptor_key: path}}]}]}
                  typed_per_filter_config:
                    envoy.filters.http.local_ratelimit:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: api
                      token_bucket: {max_tokens: 5, fill_interval: 1s}
                      descriptors: [{entries: [{key: path, value: /api/x}], token_bucket: {max_tokens: 1, fill_interval: 1s}}]
            """
        #expect(errors(in: loadWithBase(filter(Self.recipe + "\n" + route))).isEmpty)
        let withoutActions = route.replacingOccurrences(
            of: "      route: {rate_limits: [{actions: [{request_headers: {header_name: \":path\", descriptor_key: path}}]}]}\n", with: "")
        #expect(errors(in: loadWithBase(filter(Self.recipe + "\n" + withoutActions))).map(\.path)
            == ["spec.configPatches[1].patch.value.route.rate_limits"])
        let wildcard = route.replacingOccurrences(of: "value: /api/x", with: "value: \"\"")
        #expect(errors(in: loadWithBase(filter(Self.recipe + "\n" + wildcard))).map(\.path)
            == ["spec.configPatches[1].patch.value.typed_per_filter_config.envoy.filters.http.local_ratelimit.descriptors[0].entries[0]"])
        let unknownAction = route.replacingOccurrences(of: "request_headers: {header_name: \":path\", descriptor_key: path}",
                                                       with: "destination_cluster: {}")
        #expect(!errors(in: loadWithBase(filter(Self.recipe + "\n" + unknownAction))).isEmpty)
    }
}
