import Foundation
import GatehouseDNS

enum BootstrapChecks {
    static func check(_ bootstrap: Resource<BootstrapSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let spec = bootstrap.spec
        if let locality = spec.locality, let problem = LocalityPattern.problem(locality, wildcards: false) {
            out.append(bootstrap.diagnostic("spec.locality", problem))
        }
        if let port = spec.admin?.port, port == 0 || port > 65535 {
            out.append(bootstrap.diagnostic("spec.admin.port", "port \(port) is out of range (1-65535)"))
        }
        if let address = spec.admin?.address, !HostName.isIPAddress(address) {
            out.append(bootstrap.diagnostic("spec.admin.address", "expected an IP address, got \"\(address)\""))
        }
        if let kb = spec.limits?.maxRequestHeadersKb, kb == 0 || kb > 8192 {
            out.append(bootstrap.diagnostic("spec.limits.maxRequestHeadersKb", "must be between 1 and 8192"))
        }
        for (index, resolver) in (spec.dns?.resolvers ?? []).enumerated() where ResolverAddress(resolver) == nil {
            out.append(bootstrap.diagnostic("spec.dns.resolvers[\(index)]",
                "expected a resolver as IP or IP:PORT (e.g. 10.96.0.10 or [::1]:5353), got \"\(resolver)\""))
        }
        if let domain = spec.clusterDomain, domain.isEmpty || HostName.problem(domain, allowWildcard: false) != nil {
            out.append(bootstrap.diagnostic("spec.clusterDomain", "expected a DNS domain such as cluster.local, got \"\(domain)\""))
        }
        if let roots = spec.jwksRootCerts {
            // Read now, not at the first key fetch: a missing bundle would otherwise surface only as
            // every token of the issuer getting 401.
            let path = ConfigPath.resolve(roots, against: bootstrap.directory)
            let text = roots.isEmpty ? nil : FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }
            if text?.contains("-----BEGIN CERTIFICATE-----") != true {
                out.append(bootstrap.diagnostic("spec.jwksRootCerts", roots.isEmpty || text == nil
                    ? "expected the path of a PEM file of CA certificates, got \"\(roots)\"\(roots.isEmpty ? "" : " (cannot read \(path))")"
                    : "\(path) holds no PEM certificate"))
            }
        }
        out += ConfigValidator.notSupported(spec.limits?.streamIdleTimeout != nil, "spec.limits.streamIdleTimeout",
                                           bootstrap, "streamIdleTimeout")
        if let identity = spec.identity {
            for (field, value) in [("certChain", identity.certChain), ("privateKey", identity.privateKey), ("rootCert", identity.rootCert)]
            where value?.isEmpty != false {
                out.append(bootstrap.diagnostic("spec.identity.\(field)", "required: the path of a PEM file"))
            }
            if let domain = identity.trustDomain, domain.isEmpty || domain.contains("/") || domain.contains(":")
                || HostName.problem(domain, allowWildcard: false) != nil {
                out.append(bootstrap.diagnostic("spec.identity.trustDomain", "expected a trust domain such as cluster.local, got \"\(domain)\""))
            }
        }
        if let dir = spec.stateDir, dir.isEmpty {
            out.append(bootstrap.diagnostic("spec.stateDir", "expected a directory path, got an empty string"))
        }
        if let store = spec.rateLimitStore {
            let type = store.type ?? (spec.stateDir != nil ? .sqlite : .memory)
            if type == .redis {
                out += redisProblems(store, bootstrap)
            }
            if type == .sqlite, spec.stateDir == nil {
                out.append(bootstrap.diagnostic("spec.rateLimitStore.type", "the sqlite store keeps its file in spec.stateDir: set it"))
            }
            for (field, set) in [("url", store.url != nil), ("failureMode", store.failureMode != nil), ("timeout", store.timeout != nil),
                                 ("caCertificates", store.caCertificates != nil)]
            where set && type != .redis {
                out.append(bootstrap.diagnostic("spec.rateLimitStore.\(field)", "only a redis store takes \(field)"))
            }
        }
        return out
    }

    /// A redis store needs a URL that parses, a timeout a request can wait, and (for `caCertificates`)
    /// a TLS URL and a readable PEM bundle. Redis itself need not be up: the gateway starts anyway and
    /// follows `failureMode` until it answers.
    static func redisProblems(_ store: BootstrapSpec.RateLimitStore, _ bootstrap: Resource<BootstrapSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        var url: RedisURL?
        if let text = store.url {
            do { url = try RedisURL.parse(text) } catch {
                out.append(bootstrap.diagnostic("spec.rateLimitStore.url", error.description))
            }
        } else {
            out.append(bootstrap.diagnostic("spec.rateLimitStore.url", "required for a redis store, e.g. redis://127.0.0.1:6379/0"))
        }
        if let timeout = store.timeout, timeout.nanoseconds < 1_000_000 || timeout.nanoseconds > 10_000_000_000 {
            out.append(bootstrap.diagnostic("spec.rateLimitStore.timeout",
                "must be between 1ms and 10s (a request waits this long for Redis), got \(timeout)"))
        }
        if let roots = store.caCertificates {
            if let url, !url.tls {
                out.append(bootstrap.diagnostic("spec.rateLimitStore.caCertificates", "only a rediss:// (TLS) URL takes caCertificates"))
            }
            let path = ConfigPath.resolve(roots, against: bootstrap.directory)
            let text = roots.isEmpty ? nil : FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }
            if text?.contains("-----BEGIN CERTIFICATE-----") != true {
                out.append(bootstrap.diagnostic("spec.rateLimitStore.caCertificates",
                    "expected the path of a PEM file of CA certificates, got \"\(roots)\" (cannot read a certificate from \(path))"))
            }
        }
        return out
    }
}
