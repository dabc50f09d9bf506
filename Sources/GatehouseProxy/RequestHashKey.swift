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
        case .cookie(let cookie):
            return cookieValue(cookie.name, in: input.headers.values("cookie")).map { XXHash64.hash($0) }
        }
    }

    /// A cookie for a request that has none (Envoy's generated cookie): its value names the client's
    /// connection (both addresses with their ports, so streams of one connection agree), and the
    /// request is hashed on it as a later request that presents it will be.
    static func generatedCookie(_ cookie: HashCookie, remoteAddress: String?, localAddress: String?) -> (key: UInt64, setCookie: String) {
        let value = hex(XXHash64.hash((remoteAddress ?? "") + (localAddress ?? "")))
        return (XXHash64.hash(value), cookie.setCookie(value: value))
    }

    /// The value of cookie `name` in the request's Cookie fields (the first one), without its quotes.
    static func cookieValue(_ name: String, in fields: [String]) -> String? {
        for field in fields {
            for pair in field.split(separator: ";") {
                let trimmed = pair.drop(while: { $0 == " " || $0 == "\t" })
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
                var value = trimmed[trimmed.index(after: equals)...]
                while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                return String(value)
            }
        }
        return nil
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    /// For a TCP route only the client's address is there to hash on.
    static func forConnection(_ balancing: LoadBalancing, clientIP: String?) -> UInt64? {
        guard case .consistentHash(.sourceIP, _) = balancing else { return nil }
        return clientIP.map { XXHash64.hash($0) }
    }
}
