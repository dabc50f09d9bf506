import GatehouseHTTP1
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore
import NIOPosix

/// One request's decision — path normalization, JWT and AuthorizationPolicy checks, route selection and
/// the upstream request — run on demand without sockets, exactly as a connection runs it. For
/// `gatehouse-microbench`, which times it against configurations of different sizes; the gateway does
/// not use it.
public final class DispatchProbe {
    private let head: RequestHead
    private let host: String
    private let origin: DownstreamOrigin
    private let snapshot: Snapshot
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let loop: LoopContext
    private let keys = JWKSCache()
    private let allocator = ByteBufferAllocator()
    /// Count decisions as a connection does (the per-loop counters' lock is part of a request's cost).
    private let countDecisions: Bool

    public init(snapshot: Snapshot, listenerPort: Int, method: String = "GET", authority: String, target: String,
                headers: [(String, String)] = [], clientIP: String = "10.0.0.1", countDecisions: Bool = false) {
        self.countDecisions = countDecisions
        var block = HTTPHeaderBlock()
        block.add("host", authority)
        for (name, value) in headers { block.add(name, value) }
        head = RequestHead(method: method, target: target, version: .http1_1, headers: block, framing: .none,
                           connection: .init(), hostCount: 1, expectsContinue: false)
        host = authority
        origin = DownstreamOrigin(listenerPort: listenerPort, tls: nil, clientIP: clientIP, localIP: nil)
        self.snapshot = snapshot
        loop = LoopContext(eventLoop: group.next())
    }

    deinit { try? group.syncShutdownGracefully() }

    /// Decides once. Returns what the gateway would do: `forward CLUSTER` or `reply STATUS FLAG`.
    @discardableResult
    public func run() -> String {
        var record = AccessLogRecord()
        // As the handlers do on every request's arrival (the rate limits' instant is this one).
        record.startTimeMillis = Timestamp.nowMillis()
        switch RequestDispatcher.dispatch(head, host: host, requestID: "probe", origin: origin, snapshot: snapshot,
                                          loop: loop, allocator: allocator, keys: keys,
                                          counters: countDecisions ? loop.decisions : nil,
                                          record: &record) {
        case .forward(let forwarding): return "forward \(forwarding.cluster.name)"
        case .reply(let reply, _): return "reply \(reply.status) \(reply.flag)"
        case .awaitRateLimit: return "await rate-limit store"
        }
    }
}
