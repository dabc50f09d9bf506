import Synchronization

/// One event loop's Istio standard metrics: per (cluster, response code, flags, gRPC status) a request
/// count and the duration and size histograms, per (cluster, flags) the TCP counters. Recorded when a
/// request's (or a connection's) log record is complete, under a lock no other thread takes but the
/// scrape. The labels Istio puts on them are built at scrape time (`IstioMetrics`), not per request.
public final class RequestMetrics: Sendable {
    struct RequestKey: Hashable {
        var cluster: String?
        var code: Int
        var flags: ResponseFlags
        var grpc: Bool
        var grpcStatus: String?
    }

    struct TCPKey: Hashable {
        var cluster: String?
        var flags: ResponseFlags
    }

    struct RequestSeries {
        var count = 0
        var duration = Histogram(bounds: IstioMetrics.durationBucketsMillis)
        var requestBytes = Histogram(bounds: IstioMetrics.sizeBuckets)
        var responseBytes = Histogram(bounds: IstioMetrics.sizeBuckets)
    }

    struct TCPSeries {
        var opened = 0
        var closed = 0
        var sent = 0
        var received = 0
    }

    struct State {
        var requests: [RequestKey: RequestSeries] = [:]
        var tcp: [TCPKey: TCPSeries] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// A finished HTTP request (its access-log record).
    public func recordRequest(_ record: inout AccessLogRecord) {
        let key = RequestKey(cluster: record.upstreamCluster, code: record.responseCode, flags: record.responseFlags,
                             grpc: record.grpc, grpcStatus: record.grpcStatus)
        let duration = Double(record.durationMillis)
        let received = Double(record.bytesReceived)
        let sent = Double(record.bytesSent)
        state.withLock { state in
            state.requests[key, default: RequestSeries()].add(duration: duration, received: received, sent: sent)
        }
    }

    /// A relayed TCP/TLS-passthrough connection picked its upstream cluster (flags `-`), or was refused
    /// before it could (with the refusal's flags).
    public func recordConnectionOpened(cluster: String?, flags: ResponseFlags = []) {
        state.withLock { $0.tcp[TCPKey(cluster: cluster, flags: flags), default: TCPSeries()].opened += 1 }
    }

    /// A relayed connection closed (its access-log record).
    public func recordConnectionClosed(_ record: inout AccessLogRecord) {
        let key = TCPKey(cluster: record.upstreamCluster, flags: record.responseFlags)
        let (sent, received) = (record.bytesSent, record.bytesReceived)
        state.withLock { $0.tcp[key, default: TCPSeries()].merge(TCPSeries(closed: 1, sent: sent, received: received)) }
    }

    func snapshot() -> State { state.withLock { $0 } }
}

extension RequestMetrics.TCPSeries {
    mutating func merge(_ other: Self) {
        opened += other.opened
        closed += other.closed
        sent += other.sent
        received += other.received
    }
}

extension RequestMetrics.RequestSeries {

    mutating func add(duration: Double, received: Double, sent: Double) {
        count += 1
        self.duration.observe(duration)
        requestBytes.observe(received)
        responseBytes.observe(sent)
    }

    mutating func merge(_ other: Self) {
        count += other.count
        duration.merge(other.duration)
        requestBytes.merge(other.requestBytes)
        responseBytes.merge(other.responseBytes)
    }
}

/// A Prometheus histogram with fixed bounds: per-bucket counts (not cumulative), a sum and a count.
struct Histogram {
    let bounds: [Double]
    /// `counts[i]` observations ≤ `bounds[i]` and above the bound before; the last slot is +Inf.
    var counts: [Int]
    var sum: Double = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count + 1)
    }

    mutating func observe(_ value: Double) {
        var index = 0
        while index < bounds.count, value > bounds[index] { index += 1 }
        counts[index] += 1
        sum += value
    }

    mutating func merge(_ other: Histogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        sum += other.sum
    }

    var count: Int { counts.reduce(0, +) }
}
