import NIOCore
import NIOPosix
import Synchronization

/// Resolved addresses of DNS endpoints, shared by all loops. A fresh entry is used as it is; a stale one
/// is still used while a refresh runs in the background (so a slow resolver never adds latency); a
/// missing one is resolved before the request continues. getaddrinfo runs on a thread pool, never on a loop.
final class DNSCache: Sendable {
    private struct Entry {
        var addresses: [SocketAddress]
        var resolvedAt: NIODeadline
        var refreshing: Bool
    }

    private let entries = Mutex<[String: Entry]>([:])
    static let maxEntries = 10_000
    /// How long the last good answer outlives failing refreshes (as for Kubernetes names).
    static let staleLimit = TimeAmount.minutes(10)
    private let threadPool: NIOThreadPool
    private let refreshInterval: TimeAmount

    init(threadPool: NIOThreadPool, refreshInterval: TimeAmount) {
        self.threadPool = threadPool
        self.refreshInterval = refreshInterval
    }

    func resolve(host: String, port: Int, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        let key = "\(host):\(port)"
        let now = NIODeadline.now()
        let cached = entries.withLock { entries -> (addresses: [SocketAddress], stale: Bool)? in
            guard var entry = entries[key] else { return nil }
            let stale = now - entry.resolvedAt > refreshInterval && !entry.refreshing
            if stale { entry.refreshing = true; entries[key] = entry }
            return (entry.addresses, stale)
        }
        if let cached {
            if cached.stale { _ = lookup(host: host, port: port, key: key, on: eventLoop) }
            return eventLoop.makeSucceededFuture(cached.addresses)
        }
        return lookup(host: host, port: port, key: key, on: eventLoop)
    }

    private func lookup(host: String, port: Int, key: String, on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        threadPool.runIfActive(eventLoop: eventLoop) { () throws -> [SocketAddress] in
            try Self.getaddrinfo(host: host, port: port)
        }.map { addresses in
            self.entries.withLock { entries in
                // Names can come from requests (ServiceEntry `resolution: NONE`): past the bound, entries
                // older than the refresh interval go first, then everything (a miss only costs a lookup).
                if entries.count >= Self.maxEntries {
                    let now = NIODeadline.now()
                    entries = entries.filter { now - $0.value.resolvedAt <= self.refreshInterval }
                    if entries.count >= Self.maxEntries { entries.removeAll(keepingCapacity: true) }
                }
                entries[key] = Entry(addresses: addresses, resolvedAt: .now(), refreshing: false)
            }
            return addresses
        }.flatMapErrorThrowing { error in
            // Keep serving the last known addresses if a refresh fails, for a bounded time: an answer
            // older than that may name addresses the service left long ago.
            let previous = self.entries.withLock { entries -> [SocketAddress]? in
                guard let entry = entries[key] else { return nil }
                if NIODeadline.now() - entry.resolvedAt > Self.staleLimit {
                    entries[key] = nil
                    return nil
                }
                entries[key]?.refreshing = false
                return entry.addresses
            }
            if let previous { return previous }
            throw error
        }
    }

    private static func getaddrinfo(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else { throw DNSError(host: host) }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let raw = info.pointee.ai_addr {
                switch info.pointee.ai_family {
                case AF_INET:
                    raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                case AF_INET6:
                    raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                default: break
                }
            }
            cursor = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw DNSError(host: host) }
        // IPv4 preferred (Istio's V4_PREFERRED): a dual-stack name such as `localhost` must not send half
        // the requests to an IPv6 address the upstream may not listen on.
        let v4 = addresses.filter { if case .v4 = $0 { return true } else { return false } }
        let preferred = v4.isEmpty ? addresses : v4
        // getaddrinfo lists each address once per protocol on some systems.
        var seen: Set<String> = []
        return preferred.filter { seen.insert(SocketAddressText.describe($0)).inserted }
    }
}

struct DNSError: Error, CustomStringConvertible {
    let host: String
    var description: String { "cannot resolve \(host)" }
}
