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
        /// The most request body kept so that a retry can send it again (Envoy's edge default, 32 KiB);
        /// a request with a longer body is not retried.
        public var retryBufferBytes: UInt32?
    }

    public struct DNS: Decodable, Sendable, Hashable {
        /// How long a ServiceEntry DNS host's address list is reused before it is resolved again.
        public var refreshRate: ConfigDuration?
        /// Where Kubernetes service names are resolved (`IP` or `IP:PORT`); default: the nameservers of
        /// /etc/resolv.conf (in a pod, the cluster's DNS).
        public var resolvers: [String]?
        /// Route to a Kubernetes service name no ServiceEntry declares by resolving it through DNS, as
        /// Istio resolves it from the cluster's registry. On by default.
        public var kubernetesServices: Bool?
    }

    /// The gateway's mesh identity, as istio-agent writes it for a proxy: a SPIFFE certificate
    /// (`spiffe://TRUST_DOMAIN/ns/NS/sa/SA`) with its chain and key, and the mesh root that signs the
    /// certificates of mesh workloads. Used for DestinationRule `ISTIO_MUTUAL`. Paths are relative to the
    /// Bootstrap's file; the files are watched and a rotation applies to new connections.
    public struct Identity: Decodable, Sendable, Hashable {
        public var certChain: String?
        public var privateKey: String?
        public var rootCert: String?
        /// Default `cluster.local`; the certificate's SPIFFE id must be in it.
        public var trustDomain: String?
    }

    public enum OutboundTrafficPolicy: String, ConfigEnum { case REGISTRY_ONLY, ALLOW_ANY }

    /// Where RateLimitPolicy counters live: `memory` (this process), `sqlite` (a file under `stateDir`,
    /// so quotas survive restarts) or `redis` (shared by replicas).
    public struct RateLimitStore: Decodable, Sendable, Hashable {
        public enum StoreType: String, ConfigEnum { case memory, sqlite, redis }
        public enum FailureMode: String, ConfigEnum { case allow, deny }
        public var type: StoreType?
        /// `redis://[:PASSWORD@]HOST[:PORT][/DB]` or `rediss://` for TLS.
        public var url: String?
        /// What a request gets while Redis cannot answer: let through (default) or refused.
        public var failureMode: FailureMode?
        /// How long a request waits for Redis's answer before `failureMode` applies.
        public var timeout: ConfigDuration?
        /// `rediss://` only: a PEM file of the CAs that sign Redis's certificate (default: the system's).
        public var caCertificates: String?
    }

    public enum PathNormalization: String, ConfigEnum { case NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES }

    /// Istio's `gatewayTopology.forwardClientCertDetails` (Envoy's `forward_client_cert_details`): what
    /// happens to `x-forwarded-client-cert`. UNDEFINED means Istio's gateway default, SANITIZE_SET.
    public enum ForwardClientCertDetails: String, ConfigEnum {
        case UNDEFINED, SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY
    }

    public var labels: [String: String]?
    /// Where the gateway runs, `region/zone/subzone` (Istio takes it from the node's topology labels):
    /// DestinationRule `localityLbSetting` prefers endpoints near it.
    public var locality: String?
    public var admin: Admin?
    public var accessLog: AccessLog?
    public var credentialsDir: String?
    public var stateDir: String?
    public var pathNormalization: PathNormalization?
    public var limits: Limits?
    public var dns: DNS?
    public var rootNamespace: String?
    /// The Kubernetes cluster domain short names expand into (`NAME.NAMESPACE.svc.DOMAIN`).
    public var clusterDomain: String?
    /// A PEM bundle of CAs trusted, besides the system's, when fetching `jwksUri` keys and OpenID
    /// discovery documents over https (an in-house identity provider).
    public var jwksRootCerts: String?
    public var numTrustedProxies: UInt32?
    public var forwardClientCertDetails: ForwardClientCertDetails?
    public var identity: Identity?
    /// Istio's `outboundTrafficPolicy.mode`: REGISTRY_ONLY (the default here, as an egress gateway
    /// needs) forwards only to hosts a ServiceEntry declares; ALLOW_ANY also lets a route name a host no
    /// ServiceEntry declares, reached through DNS at the destination's port.
    public var outboundTrafficPolicy: OutboundTrafficPolicy?
    public var rateLimitStore: RateLimitStore?
}
