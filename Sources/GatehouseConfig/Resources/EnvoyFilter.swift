/// networking.istio.io EnvoyFilter, in the one shape Gatehouse enforces: Istio's "Enabling rate limits
/// using Envoy" recipe for the local rate limit (`envoy.filters.http.local_ratelimit`), inserted as an
/// HTTP filter and, optionally, configured per route (`typed_per_filter_config`). Everything else an
/// EnvoyFilter can patch is refused at load with the field that asks for it (`EnvoyFilterChecks`).
public struct EnvoyFilterSpec: Decodable, Sendable, Hashable {
    public var workloadSelector: WorkloadSelector?
    public var targetRefs: [PolicyTargetReference]?
    public var priority: Int32?
    public var configPatches: [ConfigPatch]?

    public struct WorkloadSelector: Decodable, Sendable, Hashable {
        public var labels: [String: String]?
    }

    public struct ConfigPatch: Decodable, Sendable, Hashable {
        public var applyTo: ApplyTo?
        public var match: Match?
        public var patch: Patch?
    }

    public enum ApplyTo: String, ConfigEnum {
        case INVALID, LISTENER, FILTER_CHAIN, NETWORK_FILTER, HTTP_FILTER, ROUTE_CONFIGURATION, VIRTUAL_HOST
        case HTTP_ROUTE, CLUSTER, EXTENSION_CONFIG, BOOTSTRAP, LISTENER_FILTER
    }

    public enum Context: String, ConfigEnum { case ANY, SIDECAR_INBOUND, SIDECAR_OUTBOUND, GATEWAY }

    public struct Match: Decodable, Sendable, Hashable {
        public var context: Context?
        public var proxy: UninterpretedValue?
        public var listener: ListenerMatch?
        public var routeConfiguration: RouteConfigurationMatch?
        public var cluster: UninterpretedValue?
    }

    public struct ListenerMatch: Decodable, Sendable, Hashable {
        public var portNumber: UInt32?
        public var portName: String?
        public var filterChain: FilterChainMatch?
        public var listenerFilter: String?
        public var name: String?
    }

    public struct FilterChainMatch: Decodable, Sendable, Hashable {
        public var name: String?
        public var sni: String?
        public var transportProtocol: String?
        public var applicationProtocols: String?
        public var filter: FilterMatch?
        public var destinationPort: UInt32?
    }

    public struct FilterMatch: Decodable, Sendable, Hashable {
        public var name: String?
        public var subFilter: SubFilterMatch?
    }

    public struct SubFilterMatch: Decodable, Sendable, Hashable {
        public var name: String?
    }

    public struct RouteConfigurationMatch: Decodable, Sendable, Hashable {
        public var portNumber: UInt32?
        public var portName: String?
        public var gateway: String?
        public var vhost: VirtualHostMatch?
        public var name: String?
    }

    public struct VirtualHostMatch: Decodable, Sendable, Hashable {
        public var name: String?
        public var domainName: String?
        public var route: RouteMatch?
    }

    public struct RouteMatch: Decodable, Sendable, Hashable {
        public enum Action: String, ConfigEnum { case ANY, ROUTE, REDIRECT, DIRECT_RESPONSE }
        public var name: String?
        public var action: Action?
    }

    public struct Patch: Decodable, Sendable, Hashable {
        public enum Operation: String, ConfigEnum {
            case INVALID, MERGE, ADD, REMOVE, INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST, REPLACE
        }
        public var operation: Operation?
        public var value: PatchValue?
        public var filterClass: UninterpretedValue?
    }

    /// The patch's `value`: an HTTP filter (`name`, `typed_config`), or a route's `typed_per_filter_config`
    /// and `route.rate_limits` (the actions that make a request's descriptors).
    public struct PatchValue: Decodable, Sendable, Hashable {
        public var name: String?
        public var typedConfig: TypedConfig?
        public var typedPerFilterConfig: [String: TypedConfig]?
        public var route: RouteValue?

        enum CodingKeys: String, CodingKey {
            case name
            case typedConfig = "typed_config"
            case typedPerFilterConfig = "typed_per_filter_config"
            case route
        }
    }

    /// envoy.config.route.v3.RouteAction, the part a rate-limit recipe merges.
    public struct RouteValue: Decodable, Sendable, Hashable {
        public var rateLimits: [RateLimit]?

        enum CodingKeys: String, CodingKey { case rateLimits = "rate_limits" }
    }

    /// envoy.config.route.v3.RateLimit: actions that each add one entry to the request's descriptor.
    public struct RateLimit: Decodable, Sendable, Hashable {
        public var actions: [Action]?
        public var stage: UInt32?
    }

    /// One rate-limit action: the supported ones (others are unknown fields, so refused).
    public struct Action: Decodable, Sendable, Hashable {
        public var requestHeaders: RequestHeaders?
        public var remoteAddress: UninterpretedValue?
        public var genericKey: GenericKey?

        enum CodingKeys: String, CodingKey {
            case requestHeaders = "request_headers"
            case remoteAddress = "remote_address"
            case genericKey = "generic_key"
        }
    }

    public struct RequestHeaders: Decodable, Sendable, Hashable {
        public var headerName: String?
        public var descriptorKey: String?
        public var skipIfAbsent: Bool?

        enum CodingKeys: String, CodingKey {
            case headerName = "header_name"
            case descriptorKey = "descriptor_key"
            case skipIfAbsent = "skip_if_absent"
        }
    }

    public struct GenericKey: Decodable, Sendable, Hashable {
        public var descriptorValue: String?
        public var descriptorKey: String?

        enum CodingKeys: String, CodingKey {
            case descriptorValue = "descriptor_value"
            case descriptorKey = "descriptor_key"
        }
    }

    /// A LocalRateLimit descriptor: the entries a request's descriptor must equal, and its bucket.
    public struct Descriptor: Decodable, Sendable, Hashable {
        public var entries: [Entry]?
        public var tokenBucket: TokenBucket?

        public struct Entry: Decodable, Sendable, Hashable {
            public var key: String?
            public var value: String?
        }

        enum CodingKeys: String, CodingKey {
            case entries
            case tokenBucket = "token_bucket"
        }
    }

    /// An `Any`: either `udpa.type.v1.TypedStruct` / `xds.type.v3.TypedStruct` wrapping the message (`type_url`,
    /// `value`), as Istio's recipe writes it, or the message itself, its fields beside `@type`.
    public struct TypedConfig: Decodable, Sendable, Hashable {
        public var type: String?
        public var typeURL: String?
        public var localRateLimit: LocalRateLimit?

        public static let typedStructTypes = ["type.googleapis.com/udpa.type.v1.TypedStruct",
                                              "type.googleapis.com/xds.type.v3.TypedStruct"]
        public static let localRateLimitType = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

        enum CodingKeys: String, CodingKey {
            case type = "@type"
            case typeURL = "type_url"
            case value
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            type = try container.decodeIfPresent(String.self, forKey: .type)
            if let type, Self.typedStructTypes.contains(type) {
                typeURL = try container.decodeIfPresent(String.self, forKey: .typeURL)
                localRateLimit = try container.decodeIfPresent(LocalRateLimit.self, forKey: .value)
            } else if type == Self.localRateLimitType {
                localRateLimit = try LocalRateLimit(from: decoder)
            }
        }
    }

    /// envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, the fields Gatehouse reads (the
    /// others are unknown fields, so refused).
    public struct LocalRateLimit: Decodable, Sendable, Hashable {
        public var statPrefix: String?
        public var status: HTTPStatus?
        public var tokenBucket: TokenBucket?
        public var filterEnabled: RuntimeFraction?
        public var filterEnforced: RuntimeFraction?
        public var responseHeadersToAdd: [HeaderValueOption]?
        public var enableXRatelimitHeaders: XRateLimitHeaders?
        public var rateLimitedAsResourceExhausted: Bool?
        public var localRateLimitPerDownstreamConnection: Bool?
        public var stage: UInt32?
        public var descriptors: [Descriptor]?
        public var alwaysConsumeDefaultTokenBucket: Bool?

        enum CodingKeys: String, CodingKey {
            case statPrefix = "stat_prefix"
            case status
            case tokenBucket = "token_bucket"
            case filterEnabled = "filter_enabled"
            case filterEnforced = "filter_enforced"
            case responseHeadersToAdd = "response_headers_to_add"
            case enableXRatelimitHeaders = "enable_x_ratelimit_headers"
            case rateLimitedAsResourceExhausted = "rate_limited_as_resource_exhausted"
            case localRateLimitPerDownstreamConnection = "local_rate_limit_per_downstream_connection"
            case stage
            case descriptors
            case alwaysConsumeDefaultTokenBucket = "always_consume_default_token_bucket"
        }
    }

    public enum XRateLimitHeaders: String, ConfigEnum { case OFF, DRAFT_VERSION_03 }

    public struct HTTPStatus: Decodable, Sendable, Hashable {
        public var code: UInt32?
    }

    /// envoy.type.v3.TokenBucket.
    public struct TokenBucket: Decodable, Sendable, Hashable {
        public var maxTokens: UInt32?
        public var tokensPerFill: UInt32?
        public var fillInterval: ConfigDuration?

        enum CodingKeys: String, CodingKey {
            case maxTokens = "max_tokens"
            case tokensPerFill = "tokens_per_fill"
            case fillInterval = "fill_interval"
        }
    }

    /// envoy.config.core.v3.RuntimeFractionalPercent: Gatehouse has no runtime, so `default_value` is the
    /// fraction (as in Envoy when the runtime key is unset).
    public struct RuntimeFraction: Decodable, Sendable, Hashable {
        public var runtimeKey: String?
        public var defaultValue: FractionalPercent?

        enum CodingKeys: String, CodingKey {
            case runtimeKey = "runtime_key"
            case defaultValue = "default_value"
        }
    }

    public struct FractionalPercent: Decodable, Sendable, Hashable {
        public enum Denominator: String, ConfigEnum { case HUNDRED, TEN_THOUSAND, MILLION }
        public var numerator: UInt32?
        public var denominator: Denominator?

        /// Parts per million, capped at all.
        public var perMillion: UInt32 {
            let scale: UInt64 = switch denominator ?? .HUNDRED {
            case .HUNDRED: 10_000
            case .TEN_THOUSAND: 100
            case .MILLION: 1
            }
            return UInt32(min(1_000_000, UInt64(numerator ?? 0) * scale))
        }
    }

    /// envoy.config.core.v3.HeaderValueOption.
    public struct HeaderValueOption: Decodable, Sendable, Hashable {
        public enum AppendAction: String, ConfigEnum {
            case APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS
        }
        public var header: Header?
        public var append: Bool?
        public var appendAction: AppendAction?

        enum CodingKeys: String, CodingKey {
            case header, append
            case appendAction = "append_action"
        }
    }

    public struct Header: Decodable, Sendable, Hashable {
        public var key: String?
        public var value: String?
    }
}
