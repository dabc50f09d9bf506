import GatehouseRouting
import GatehouseUpstream

/// The hash a consistent-hash cluster chooses an endpoint by (`consistentHash`'s key), computed from the
/// request once it is routed. nil when the request lacks the key: the cluster then picks at random,
/// as Envoy does.
enum RequestHashKey {
    static func compute(_ source: HashKeySource, input: RouteInput, clientIP: String?) -> UInt64? {
        switch source {
        case .header(let name):
            // A repeated header hashes as its values joined in order, so a request is never split from
            // itself by which value a proxy happened to read.
            let values = input.headers.values(name)
            guard !values.isEmpty else { return nil }
            return XXHash64.hash(values.count == 1 ? values[0] : values.joined(separator: ","))
        case .sourceIP:
            return clientIP.map { XXHash64.hash($0) }
        case .queryParameter(let name):
            return input.queryValue(name).map { XXHash64.hash(String($0)) }
        }
    }

    /// For a TCP route only the client's address is there to hash on.
    static func forConnection(_ balancing: LoadBalancing, clientIP: String?) -> UInt64? {
        guard case .consistentHash(.sourceIP, _) = balancing else { return nil }
        return clientIP.map { XXHash64.hash($0) }
    }
}
