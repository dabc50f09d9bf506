/// networking.istio.io DestinationRule: subsets and traffic policy for a host.
public struct DestinationRuleSpec: Decodable, Sendable, Hashable {
    public var host: String
    public var trafficPolicy: TrafficPolicy?
    public var subsets: [Subset]?
    public var exportTo: [String]?
    var workloadSelector: UninterpretedValue?

    public struct Subset: Decodable, Sendable, Hashable {
        public var name: String
        public var labels: [String: String]?
        public var trafficPolicy: TrafficPolicy?
    }
}

public struct TrafficPolicy: Decodable, Sendable, Hashable {
    public var loadBalancer: LoadBalancerSettings?
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetectionSettings?
    public var tls: ClientTLSSettings?
    public var portLevelSettings: [PortTrafficPolicy]?
    public var tunnel: UninterpretedValue?
    public var proxyProtocol: UninterpretedValue?
    public var retryBudget: UninterpretedValue?
}

/// `portLevelSettings[]`: the sections that apply to one port of the host. They replace every section of
/// the level they are written at, and a section they omit takes the default (Istio's `MergeTrafficPolicy`).
public struct PortTrafficPolicy: Decodable, Sendable, Hashable {
    public struct Port: Decodable, Sendable, Hashable {
        public var number: UInt32?
    }
    public var port: Port?
    public var loadBalancer: LoadBalancerSettings?
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetectionSettings?
    public var tls: ClientTLSSettings?
}

/// `trafficPolicy.tls`: how the gateway talks TLS to the destination (Istio's `ClientTLSSettings`).
public struct ClientTLSSettings: Decodable, Sendable, Hashable {
    public enum Mode: String, ConfigEnum { case DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL }
    public var mode: Mode?
    public var clientCertificate: String?
    public var privateKey: String?
    public var caCertificates: String?
    public var credentialName: String?
    public var subjectAltNames: [String]?
    public var sni: String?
    public var insecureSkipVerify: Bool?
    public var caCrl: String?
}

public struct LoadBalancerSettings: Decodable, Sendable, Hashable {
    public enum Simple: String, ConfigEnum {
        case UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST
    }
    public var simple: Simple?
    public var consistentHash: ConsistentHashSettings?
    public var localityLbSetting: LocalityLbSetting?
    public var warmupDurationSecs: UninterpretedValue?
    public var warmup: UninterpretedValue?
}

/// Istio's LocalityLoadBalancerSetting: `distribute` traffic over localities by weight, or `failover`
/// (by priority: same zone, same region, then the region `failover` names), `enabled: false` for neither.
public struct LocalityLbSetting: Decodable, Sendable, Hashable {
    public struct Distribute: Decodable, Sendable, Hashable {
        public var from: String?
        public var to: [String: UInt32]?
    }
    public struct Failover: Decodable, Sendable, Hashable {
        public var from: String?
        public var to: String?
    }
    public var distribute: [Distribute]?
    public var failover: [Failover]?
    public var failoverPriority: [String]?
    public var enabled: Bool?
}

/// `outlierDetection`. Unset counts take Envoy's defaults as Istio leaves them: 5 consecutive 5xx,
/// gateway errors off.
public struct OutlierDetectionSettings: Decodable, Sendable, Hashable {
    /// Deprecated: consecutive 502/503/504 responses (Istio maps it to `consecutiveGatewayErrors`).
    public var consecutiveErrors: Int32?
    public var consecutiveGatewayErrors: UInt32?
    public var consecutive5xxErrors: UInt32?
    public var interval: ConfigDuration?
    public var baseEjectionTime: ConfigDuration?
    public var maxEjectionPercent: Int32?
    public var minHealthPercent: Int32?
    public var splitExternalLocalOriginErrors: Bool?
    public var consecutiveLocalOriginFailures: UInt32?
}

/// `loadBalancer.consistentHash`: one hash key (`httpHeaderName`, `httpCookie`, `useSourceIp`,
/// `httpQueryParameterName`) and one table (`ringHash`, or the deprecated top-level `minimumRingSize`, or
/// `maglev`).
public struct ConsistentHashSettings: Decodable, Sendable, Hashable {
    public struct RingHash: Decodable, Sendable, Hashable {
        public var minimumRingSize: UInt64?
    }
    public struct Maglev: Decodable, Sendable, Hashable {
        public var tableSize: UInt64?
    }
    /// Istio's HTTPCookie: hash on a cookie, generated (and set on the response) when the request has
    /// none.
    public struct HTTPCookie: Decodable, Sendable, Hashable {
        public struct Attribute: Decodable, Sendable, Hashable {
            public var name: String?
            public var value: String?
        }
        public var name: String?
        public var path: String?
        /// The generated cookie's Max-Age; 0 makes it a session cookie.
        public var ttl: ConfigDuration?
        public var attributes: [Attribute]?
    }
    public var httpHeaderName: String?
    public var httpCookie: HTTPCookie?
    public var useSourceIp: Bool?
    public var httpQueryParameterName: String?
    public var ringHash: RingHash?
    public var maglev: Maglev?
    public var minimumRingSize: UInt64?
}

public struct ConnectionPoolSettings: Decodable, Sendable, Hashable {
    public struct TCP: Decodable, Sendable, Hashable {
        public var maxConnections: Int32?
        public var connectTimeout: ConfigDuration?
        public var tcpKeepalive: TCPKeepalive?
        public var maxConnectionDuration: ConfigDuration?
        public var idleTimeout: ConfigDuration?
    }
    /// `tcp.tcpKeepalive`: SO_KEEPALIVE on upstream connections; unset fields take the OS's values.
    public struct TCPKeepalive: Decodable, Sendable, Hashable {
        public var probes: UInt32?
        public var time: ConfigDuration?
        public var interval: ConfigDuration?
    }
    public struct HTTP: Decodable, Sendable, Hashable {
        public enum H2UpgradePolicy: String, ConfigEnum { case DEFAULT, DO_NOT_UPGRADE, UPGRADE }
        public var http1MaxPendingRequests: Int32?
        public var http2MaxRequests: Int32?
        public var maxRequestsPerConnection: Int32?
        public var maxRetries: Int32?
        public var idleTimeout: ConfigDuration?
        public var h2UpgradePolicy: H2UpgradePolicy?
        public var useClientProtocol: Bool?
        public var maxConcurrentStreams: Int32?
    }
    public var tcp: TCP?
    public var http: HTTP?
}

/// A locality as Istio writes it in `localityLbSetting`: up to three `/`-separated parts
/// (`region/zone/subzone`), `*` only as the last.
public enum LocalityPattern {
    /// What is wrong with `text` as a locality (or pattern), nil when nothing.
    public static func problem(_ text: String, wildcards: Bool = true) -> String? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if text.isEmpty || parts.count > 3 { return "\"\(text)\" is not a locality (region/zone/subzone)" }
        for (index, part) in parts.enumerated() {
            if part.isEmpty { return "\"\(text)\" has an empty part" }
            if part.contains("*") {
                guard wildcards else { return "\"\(text)\": no wildcard here" }
                if part != "*" || index != parts.count - 1 { return "\"\(text)\": '*' may only be the whole last part" }
            }
        }
        return nil
    }
}
