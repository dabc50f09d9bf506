import GatehouseSnapshot
import GatehouseTelemetry
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// State of one event loop, touched only from that loop.
final class LoopContext: @unchecked Sendable {
    let eventLoop: EventLoop
    let pool: ConnectionPool
    var roundRobin = RoundRobin()
    private var addresses: [String: SocketAddress] = [:]

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        pool = ConnectionPool(eventLoop: eventLoop)
    }

    /// Parsed socket addresses of static endpoints, cached so a request does not re-parse the IP.
    func socketAddress(for endpoint: Endpoint) -> SocketAddress? {
        let key = endpoint.description
        if let cached = addresses[key] { return cached }
        guard let address = try? SocketAddress(ipAddress: endpoint.address, port: endpoint.port) else { return nil }
        addresses[key] = address
        return address
    }
}

/// Everything the data plane shares across connections: the snapshot store, the log writer, the
/// per-loop contexts and the set of open downstream connections (for drain).
public final class ProxyRuntime: Sendable {
    public let store: SnapshotStore
    let accessLog: AccessLogWriter?
    let dns: DNSCache
    private let loops: [ObjectIdentifier: LoopContext]
    let connections = ConnectionRegistry()
    private let drainingFlag = Atomic<Bool>(false)

    public init(store: SnapshotStore, accessLog: AccessLogWriter?, group: MultiThreadedEventLoopGroup,
                threadPool: NIOThreadPool) {
        self.store = store
        self.accessLog = accessLog
        var loops: [ObjectIdentifier: LoopContext] = [:]
        for loop in group.makeIterator() { loops[ObjectIdentifier(loop)] = LoopContext(eventLoop: loop) }
        self.loops = loops
        dns = DNSCache(threadPool: threadPool,
                       refreshInterval: .nanoseconds(store.snapshot.settings.dnsRefreshNanoseconds))
    }

    func loopContext(for eventLoop: EventLoop) -> LoopContext {
        if let context = loops[ObjectIdentifier(eventLoop)] { return context }
        preconditionFailure("channel on an event loop outside the gateway's group")
    }

    var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }

    func beginDrain() { drainingFlag.store(true, ordering: .relaxed) }

    func log(_ record: AccessLogRecord) {
        accessLog?.write(record.jsonLine())
    }
}

/// Open downstream connections, so drain can tell each to finish and wait for them to go.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel) -> Int {
        channels.withLock { $0[ObjectIdentifier(channel)] = channel; return $0.count }
    }

    func remove(_ channel: Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var count: Int { channels.withLock { $0.count } }
    var all: [Channel] { channels.withLock { Array($0.values) } }
}
