/// gatehouse.dev Bootstrap: the gateway's own settings (identity, admin, logs, limits).
public struct BootstrapSpec: Decodable, Sendable, Hashable {
    public struct Admin: Decodable, Sendable, Hashable {
        public var address: String?
        public var port: UInt32?
    }

    public struct AccessLog: Decodable, Sendable, Hashable {
        public enum Format: String, ConfigEnum { case json }
        /// `-` for stdout, otherwise a file path (relative to the Bootstrap's file).
        public var path: String?
        public var format: Format?
    }

    public struct Limits: Decodable, Sendable, Hashable {
        public var maxRequestHeadersKb: UInt32?
        public var maxRequestHeaders: UInt32?
        public var requestHeadersTimeout: ConfigDuration?
        public var tlsHandshakeTimeout: ConfigDuration?
        public var streamIdleTimeout: ConfigDuration?
        public var idleTimeout: ConfigDuration?
        public var maxConcurrentStreams: UInt32?
        public var maxConnections: UInt32?
        public var drainTimeout: ConfigDuration?
        public var connectTimeout: ConfigDuration?
    }

    public struct DNS: Decodable, Sendable, Hashable {
        /// How long a resolved address list is reused before it is resolved again.
        public var refreshRate: ConfigDuration?
    }

    public enum PathNormalization: String, ConfigEnum { case NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES }

    public var labels: [String: String]?
    public var admin: Admin?
    public var accessLog: AccessLog?
    public var credentialsDir: String?
    public var stateDir: String?
    public var pathNormalization: PathNormalization?
    public var limits: Limits?
    public var dns: DNS?
    public var rootNamespace: String?
    public var numTrustedProxies: UInt32?
    public var identity: UninterpretedValue?
    public var rateLimitStore: UninterpretedValue?
}
