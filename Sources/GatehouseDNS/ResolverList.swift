#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The resolvers the gateway asks: the Bootstrap's `dns.resolvers`, or the `nameserver` lines of
/// `/etc/resolv.conf` (in a pod, the cluster's DNS), in order.
public struct ResolverAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `10.96.0.10`, `10.96.0.10:53`, `::1`, `[::1]:5353`; nil if the text is none of these.
    public init?(_ text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { port = 53 } else {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            }
        } else if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard let number = Int(parts[1]), (1...65535).contains(number) else { return nil }
            host = String(parts[0])
            port = number
        } else {
            host = text
            port = 53
        }
        guard Self.isIPAddress(host) else { return nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// The `nameserver` lines of a resolv.conf text (comments and other options ignored).
    public static func fromResolvConf(_ text: String) -> [ResolverAddress] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            // A scoped IPv6 address (fe80::1%eth0) keeps its zone out: the gateway does not bind per interface.
            return ResolverAddress(String(words[1].prefix { $0 != "%" }))
        }
    }
}
