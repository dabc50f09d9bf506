import Foundation
import GatehouseConfig
import GatehouseRouting
import GatehouseSecurity
import GatehouseUpstream

/// The compiled, immutable form of one config version. Every request reads the snapshot current when it
/// started and keeps it to the end, so a reload never changes a request halfway.
public final class Snapshot: Sendable {
    public let version: Int
    public let loadedAt: Date
    public let listeners: [Listener]
    /// Every cluster, at its `index` (routes refer to them by it).
    public let clusterList: [Cluster]
    /// The same clusters by name (admin views, tests).
    public let clusters: [String: Cluster]
    public let settings: GatewaySettings
    public let summary: String
    /// RequestAuthentication: one set of JWT rules for the whole gateway (it is not port-scoped).
    public let authentication: RequestAuthenticator
    /// RateLimitPolicy: one ordered set of rules for the whole gateway.
    public let rateLimits: RateLimits

    /// Resources read but not applied (they configure sidecars, or nothing this gateway routes to).
    public let notApplicable: [InapplicableResource]
    /// Kubernetes resources skipped in the config files, by kind.
    public let skippedKubernetes: [String: Int]

    public init(version: Int, loadedAt: Date, listeners: [Listener], clusterList: [Cluster],
                settings: GatewaySettings, summary: String, authentication: RequestAuthenticator = .empty,
                rateLimits: RateLimits = .empty, notApplicable: [InapplicableResource] = [], skippedKubernetes: [String: Int] = [:]) {
        self.authentication = authentication
        self.rateLimits = rateLimits
        self.notApplicable = notApplicable
        self.skippedKubernetes = skippedKubernetes
        self.version = version
        self.loadedAt = loadedAt
        self.listeners = listeners
        self.clusterList = clusterList
        clusters = Dictionary(clusterList.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.settings = settings
        self.summary = summary
        listenersByPort = Dictionary(listeners.map { ($0.port, $0) }, uniquingKeysWith: { first, _ in first })
    }

    private let listenersByPort: [Int: Listener]

    public func listener(port: Int) -> Listener? { listenersByPort[port] }

    /// The cluster a destination of this snapshot refers to.
    public func cluster(at index: Int) -> Cluster? { clusterList.indices.contains(index) ? clusterList[index] : nil }
}

/// One bound port. Plain HTTP servers on it share one route table (Istio merges them per port); TLS
/// servers each have their own, chosen by SNI.
public struct Listener: Sendable {
    public var port: Int
    public var bindAddress: String
    /// The plain HTTP route table (empty on a TLS port).
    public var routes: RouteTable
    /// Set on a port whose servers terminate TLS.
    public var tls: TLSServers?
    /// Set on a TLS PASSTHROUGH or TCP port: connections are relayed as bytes.
    public var stream: StreamRoutes?
    /// `Gateway ns/name` of the servers on this port, for logs and `config_dump`.
    public var gateways: [String]
    /// The AuthorizationPolicies that apply on this port.
    public var authorization: AuthorizationEngine = .empty

    public init(port: Int, bindAddress: String, routes: RouteTable, tls: TLSServers? = nil,
                stream: StreamRoutes? = nil, gateways: [String]) {
        self.port = port
        self.bindAddress = bindAddress
        self.routes = routes
        self.tls = tls
        self.stream = stream
        self.gateways = gateways
    }
}

/// An upstream cluster: `outbound|PORT|SUBSET|HOST`.
public struct Cluster: Sendable {
    public enum Discovery: Sendable, Equatable {
        /// Endpoint addresses are IPs.
        case staticAddresses
        /// Endpoint addresses are names resolved (and cached) by the data plane.
        case dns
        /// The one endpoint is a Kubernetes service's FQDN, resolved through the configured DNS resolvers
        /// and kept for the answer's TTL.
        case kubernetesService
        /// ServiceEntry `resolution: NONE`: no endpoints; each request goes to the host it names (Host or
        /// `:authority`; SNI on a TCP route), resolved by DNS, at `port`, if one of `hosts` (exact, or
        /// `*.suffix`) covers it (Envoy's dynamic forward proxy).
        case dynamicForward(hosts: [String], port: Int)

        /// As `/clusters` names it (Envoy's cluster types; a Kubernetes service is Istio's EDS there,
        /// and DNS here).
        public var envoyName: String {
            switch self {
            case .staticAddresses: "STATIC"
            case .dns: "STRICT_DNS"
            case .kubernetesService: "STRICT_DNS (Kubernetes service)"
            case .dynamicForward: "DYNAMIC_FORWARD_PROXY"
            }
        }

        public var isDynamicForward: Bool {
            if case .dynamicForward = self { return true }
            return false
        }

        /// For `.dynamicForward`: whether `host` (a request's, lowercased, no port) is one it may go to.
        public func forwards(to host: Substring) -> Bool {
            guard case .dynamicForward(let hosts, _) = self, !host.isEmpty else { return false }
            return hosts.contains { HostPattern.covers($0, host) }
        }
    }

    public var name: String
    /// Its position in the snapshot's `clusterList` (set by the compiler).
    public var index = 0
    public var host: String
    public var port: Int
    public var subset: String?
    public var discovery: Discovery
    public var endpoints: [Endpoint]
    public var connectTimeoutNanoseconds: Int64
    /// DestinationRule `connectionPool.http.maxRequestsPerConnection`: 0 = unlimited, 1 = no keep-alive.
    public var maxRequestsPerConnection: Int
    public var idleTimeoutNanoseconds: Int64
    /// Requests go upstream over HTTP/2 (h2c): the ServiceEntry port's protocol is HTTP2 or GRPC, or a
    /// DestinationRule sets `h2UpgradePolicy: UPGRADE`.
    public var http2 = false
    /// The namespace of the ServiceEntry behind it (Istio's `destination_service_namespace`); empty
    /// for a host no ServiceEntry declares.
    public var serviceNamespace = ""
    /// DestinationRule `loadBalancer`; Istio's default, LEAST_REQUEST, when none is set.
    public var loadBalancing: LoadBalancing = .leastRequest
    /// `localityLbSetting` against the gateway's locality: endpoints by priority or locality weight;
    /// nil when locality plays no part (no gateway locality, one priority, or turned off).
    public var localityPlan: LocalityPlan?
    /// DestinationRule `outlierDetection`, with Istio's defaults; nil when the rule has none.
    public var outlierDetection: OutlierPolicy?
    /// DestinationRule `connectionPool` limits enforced as circuit breakers; nil when none is set.
    public var circuitBreakers: CircuitBreakerLimits?
    /// DestinationRule `tls`; nil: plaintext.
    public var tls: UpstreamTLS?
    /// DestinationRule `connectionPool.tcp.tcpKeepalive`; nil: no keepalive probes.
    public var tcpKeepalive: TCPKeepalivePolicy?
    /// DestinationRule `connectionPool.tcp.maxConnectionDuration`: an upstream HTTP connection older
    /// than this takes no new request; nil: no cap.
    public var maxConnectionDurationNanoseconds: Int64?
}

/// SO_KEEPALIVE with the probe settings that are set (nil: the kernel's default), in whole seconds.
public struct TCPKeepalivePolicy: Sendable, Hashable {
    public var probes: Int?
    public var timeSeconds: Int?
    public var intervalSeconds: Int?

    public init(probes: Int?, timeSeconds: Int?, intervalSeconds: Int?) {
        self.probes = probes
        self.timeSeconds = timeSeconds
        self.intervalSeconds = intervalSeconds
    }
}

public struct Endpoint: Sendable, Hashable {
    public var address: String
    public var port: Int
    public var labels: [String: String]
    /// WorkloadEntry / ServiceEntry endpoint `locality` (`region/zone/subzone`); empty when unset.
    public var locality = ""

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// Bootstrap settings the data plane needs, with defaults applied.
public struct GatewaySettings: Sendable {
    /// nil: stdout.
    public var accessLogPath: String?
    public var accessLogEnabled: Bool
    public var maxRequestHeaderBytes: Int
    public var maxRequestHeaders: Int
    public var requestHeadersTimeoutNanoseconds: Int64
    public var idleTimeoutNanoseconds: Int64
    public var streamIdleTimeoutNanoseconds: Int64
    public var drainTimeoutNanoseconds: Int64
    public var maxConnections: Int
    public var tlsHandshakeTimeoutNanoseconds: Int64
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS offered to clients.
    public var maxConcurrentStreams: Int
    public var dnsRefreshNanoseconds: Int64
    /// Bootstrap `dns.resolvers` as written (`IP` or `IP:PORT`); empty: /etc/resolv.conf's nameservers.
    public var dnsResolvers: [String] = []
    /// Bootstrap `jwksRootCerts`, resolved: extra CAs for https key fetches.
    public var jwksRootCertificates: String? = nil
    /// Where `tls.credentialName` X is found: `X/tls.crt`, `X/tls.key`, `X/ca.crt`.
    public var credentialsDirectory: String
    /// Where RateLimitPolicy counters live (Bootstrap `rateLimitStore`, `stateDir`).
    public var rateLimitStore: RateLimitStoreSettings = .memory
    public var labels: [String: String]
    public var namespace: String
    /// The admin listener (`/ready`, `/stats/prometheus`); nil when the Bootstrap has no `admin`.
    public var adminAddress: String? = nil
    public var adminPort: Int? = nil
    /// Applied to every request path before routing, authorization and forwarding (Istio's default: BASE).
    public var pathNormalization: PathNormalization = .base
    /// Bootstrap `metadata.name`: what a policy's `targetRef` (kind Gateway) names.
    public var gatewayName: String = ""
    /// Policies here apply mesh-wide (Istio's root namespace, default istio-system).
    public var rootNamespace: String = "istio-system"
    /// Proxies in front of the gateway whose X-Forwarded-For entries are trusted (`remote.ip`).
    public var numTrustedProxies: Int = 0
    /// What `x-forwarded-client-cert` becomes upstream (Istio's gateway default: SANITIZE_SET).
    public var forwardClientCertDetails: BootstrapSpec.ForwardClientCertDetails = .SANITIZE_SET
    /// Bootstrap `identity`: the gateway's SPIFFE identity (ISTIO_MUTUAL); nil when it has none.
    public var meshIdentity: MeshIdentity? = nil
    /// Bootstrap `limits.retryBufferBytes`: the request body kept for retries to send again.
    public var retryBufferBytes: Int = 32 * 1024
    /// Bootstrap `locality`: where the gateway runs (`region/zone/subzone`); empty when unset.
    public var locality = ""
}

/// Bootstrap `rateLimitStore`: `memory` (this process only), `sqlite` (quota counters written behind
/// to `directory/ratelimit.sqlite`, so they survive restarts; the default when `stateDir` is set), or
/// `redis` (every counter in one Redis, shared by the gateways that use it).
public enum RateLimitStoreSettings: Sendable, Equatable {
    case memory
    case sqlite(directory: String)
    case redis(RedisStoreSettings)
}

/// Bootstrap `rateLimitStore` of type `redis`.
public struct RedisStoreSettings: Sendable, Equatable {
    public var url: RedisURL
    /// Let requests through (true, the default) or refuse them while Redis cannot answer.
    public var failOpen: Bool
    /// How long a request waits for Redis before `failOpen` decides it.
    public var timeoutNanoseconds: Int64
    /// `rediss://`: the CA bundle to verify Redis's certificate with (nil: the system's).
    public var caCertificatesPath: String?

    public init(url: RedisURL, failOpen: Bool = true, timeoutNanoseconds: Int64 = 50_000_000, caCertificatesPath: String? = nil) {
        self.url = url
        self.failOpen = failOpen
        self.timeoutNanoseconds = timeoutNanoseconds
        self.caCertificatesPath = caCertificatesPath
    }
}
