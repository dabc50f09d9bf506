/// networking.istio.io VirtualService.
public struct VirtualServiceSpec: Decodable, Sendable, Hashable {
    public var hosts: [String]?
    public var gateways: [String]?
    public var http: [HTTPRoute]?
    public var tls: [TLSRoute]?
    public var tcp: [TCPRoute]?
    public var exportTo: [String]?

    /// Lists a Gateway (not just `mesh`): otherwise Istio applies it to sidecars only, never to a gateway.
    public var isBoundToGateway: Bool { (gateways ?? []).contains { $0 != "mesh" } }
}

public struct StringMatch: Decodable, Sendable, Hashable {
    public var exact: String?
    public var prefix: String?
    public var suffix: String?
    public var regex: String?
}

public struct HTTPRoute: Decodable, Sendable, Hashable {
    public var name: String?
    public var match: [HTTPMatchRequest]?
    public var route: [HTTPRouteDestination]?
    public var redirect: HTTPRedirect?
    public var directResponse: HTTPDirectResponse?
    public var delegate: Delegate?
    public var rewrite: HTTPRewrite?
    public var timeout: ConfigDuration?
    public var headers: Headers?
    /// nil: Istio's default retry policy.
    public var retries: HTTPRetry?
    public var fault: HTTPFaultInjection?
    /// Where a copy of each request goes, fire and forget.
    public var mirror: Destination?
    /// The share of requests `mirror` copies (100 when unset).
    public var mirrorPercentage: HTTPFaultInjection.Percent?
    /// Deprecated integer share, used when `mirrorPercentage` is not set.
    public var mirrorPercent: UInt32?
    /// Several mirrors, each with its own share (instead of `mirror`).
    public var mirrors: [HTTPMirrorPolicy]?
    public var corsPolicy: CorsPolicy?
}

/// One of `mirrors`: a destination and the share of requests copied to it (100 when unset).
public struct HTTPMirrorPolicy: Decodable, Sendable, Hashable {
    public var destination: Destination
    public var percentage: HTTPFaultInjection.Percent?
}

/// Istio's CorsPolicy, which Envoy's CORS filter enforces per route.
public struct CorsPolicy: Decodable, Sendable, Hashable {
    public enum UnmatchedPreflights: String, ConfigEnum { case UNSPECIFIED, FORWARD, IGNORE }
    public var allowOrigins: [StringMatch]?
    /// Deprecated: exact origins.
    public var allowOrigin: [String]?
    public var allowMethods: [String]?
    public var allowHeaders: [String]?
    public var exposeHeaders: [String]?
    public var maxAge: ConfigDuration?
    public var allowCredentials: Bool?
    public var unmatchedPreflights: UnmatchedPreflights?
}

/// Istio's HTTPFaultInjection: a delay and/or an abort, each for a percentage of requests.
public struct HTTPFaultInjection: Decodable, Sendable, Hashable {
    public struct Percent: Decodable, Sendable, Hashable {
        public var value: Double?
    }
    public struct Delay: Decodable, Sendable, Hashable {
        public var fixedDelay: ConfigDuration?
        public var exponentialDelay: UninterpretedValue?
        public var percentage: Percent?
        /// Deprecated integer percentage, used when `percentage` is not set.
        public var percent: Int32?
    }
    public struct Abort: Decodable, Sendable, Hashable {
        public var httpStatus: Int32?
        /// A gRPC status by its name (`UNAVAILABLE`, not 14), as Istio takes it.
        public var grpcStatus: String?
        public var http2Error: String?
        public var percentage: Percent?
    }
    public var delay: Delay?
    public var abort: Abort?

    /// The gRPC status names Istio accepts in `abort.grpcStatus`, and their codes.
    public static let grpcStatusCodes: [String: Int] = [
        "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
        "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
        "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
        "UNAUTHENTICATED": 16,
    ]
}

public struct HTTPMatchRequest: Decodable, Sendable, Hashable {
    public var name: String?
    public var uri: StringMatch?
    public var scheme: StringMatch?
    public var method: StringMatch?
    public var authority: StringMatch?
    public var headers: [String: StringMatch]?
    public var port: UInt32?
    public var sourceLabels: [String: String]?
    public var gateways: [String]?
    public var queryParams: [String: StringMatch]?
    public var ignoreUriCase: Bool?
    public var withoutHeaders: [String: StringMatch]?
    public var sourceNamespace: String?
    public var statPrefix: String?
}

public struct PortSelector: Decodable, Sendable, Hashable {
    public var number: UInt32?
}

public struct Destination: Decodable, Sendable, Hashable {
    public var host: String
    public var subset: String?
    public var port: PortSelector?
}

public struct HTTPRouteDestination: Decodable, Sendable, Hashable {
    public var destination: Destination
    public var weight: Int32?
    public var headers: Headers?
}

public struct Headers: Decodable, Sendable, Hashable {
    public struct Operations: Decodable, Sendable, Hashable {
        public var set: [String: String]?
        public var add: [String: String]?
        public var remove: [String]?
    }
    public var request: Operations?
    public var response: Operations?
}

public struct HTTPRedirect: Decodable, Sendable, Hashable {
    public enum DerivePort: String, ConfigEnum { case FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT }
    public var uri: String?
    public var authority: String?
    public var port: UInt32?
    public var derivePort: DerivePort?
    public var scheme: String?
    public var redirectCode: UInt32?
}

public struct HTTPDirectResponse: Decodable, Sendable, Hashable {
    public struct Body: Decodable, Sendable, Hashable {
        public var string: String?
        public var bytes: String?
    }
    public var status: UInt32
    public var body: Body?
}

public struct Delegate: Decodable, Sendable, Hashable {
    public var name: String?
    public var namespace: String?
}

public struct HTTPRewrite: Decodable, Sendable, Hashable {
    public struct RegexRewrite: Decodable, Sendable, Hashable {
        public var match: String?
        public var rewrite: String?
    }
    public var uri: String?
    public var authority: String?
    public var uriRegexRewrite: RegexRewrite?
}

public struct RouteDestination: Decodable, Sendable, Hashable {
    public var destination: Destination
    public var weight: Int32?
}

public struct TLSRoute: Decodable, Sendable, Hashable {
    public struct Match: Decodable, Sendable, Hashable {
        public var sniHosts: [String]?
        public var destinationSubnets: [String]?
        public var port: UInt32?
        public var sourceLabels: [String: String]?
        public var gateways: [String]?
        public var sourceNamespace: String?
    }
    public var match: [Match]?
    public var route: [RouteDestination]?
}

public struct TCPRoute: Decodable, Sendable, Hashable {
    public struct Match: Decodable, Sendable, Hashable {
        public var destinationSubnets: [String]?
        public var port: UInt32?
        public var sourceLabels: [String: String]?
        public var gateways: [String]?
        public var sourceNamespace: String?
    }
    public var match: [Match]?
    public var route: [RouteDestination]?
}
