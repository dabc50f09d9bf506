import GatehouseHTTP1
import GatehouseTelemetry
import NIOCore
import NIOEmbedded
import Testing
@testable import GatehouseProxy

/// `HTTP1Attempt` on an `EmbeddedChannel`: what goes on the wire for each framing, and where the
/// connection goes when the exchange ends.
@Suite(.serialized) final class HTTP1AttemptTests {
    let channel = EmbeddedChannel()
    let pool: ConnectionPool
    let connection: UpstreamConnection
    let receiver = Receiver()

    init() throws {
        let handler = UpstreamHandler(limits: HTTP1Limits())
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        pool = ConnectionPool(eventLoop: channel.eventLoop)
        connection = UpstreamConnection(channel: channel, handler: handler,
                                        poolKey: PoolKey(cluster: 0, address: try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
    }

    deinit { _ = try? channel.finish(acceptAlreadyClosed: true) }

    func attempt(framing: HTTP1BodyFraming, reused: Bool = false, maxRequests: Int = 0,
                 maxAge: TimeAmount? = nil) -> HTTP1Attempt {
        HTTP1Attempt(lease: ConnectionPool.Lease(connection: connection, reused: reused), pool: pool,
                     head: ByteBuffer(string: "POST / HTTP/1.1\r\nhost: a\r\n\r\n"), framing: framing, isHEAD: false,
                     maxRequestsPerConnection: maxRequests, maxConnectionAge: maxAge, receiver: receiver,
                     metrics: GatewayMetrics())
    }

    func written() throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    @Test func aChunkedBodyIsFramedPieceByPieceAndEndsWithTheLastChunkAndTrailers() throws {
        let attempt = attempt(framing: .chunked)
        attempt.sendHead()
        attempt.sendBody(ByteBuffer(string: "hello"))
        attempt.sendBody(ByteBuffer(string: "0123456789abcdef"))
        var trailers = HTTPHeaderBlock()
        trailers.add("checksum", "x")
        attempt.sendEnd(trailers: trailers)
        attempt.flush()
        #expect(try written() == "POST / HTTP/1.1\r\nhost: a\r\n\r\n5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nchecksum: x\r\n\r\n")
    }

    @Test func aContentLengthBodyGoesAsItIsWithNothingAtItsEnd() throws {
        let attempt = attempt(framing: .contentLength(5))
        attempt.sendHead()
        attempt.sendBody(ByteBuffer(string: "hello"))
        attempt.sendEnd(trailers: nil)
        attempt.flush()
        #expect(try written() == "POST / HTTP/1.1\r\nhost: a\r\n\r\nhello")
    }

    @Test func aCleanlyCompletedAttemptGoesBackToThePoolForTheNextRequest() throws {
        let attempt = attempt(framing: .none)
        #expect(!attempt.reused)
        attempt.complete(reusable: true)
        #expect(channel.isActive)
        let next = pool.takeIdle(key: connection.poolKey, idleTimeout: .seconds(60))
        #expect(next === connection)
    }

    @Test func anAttemptAtTheConnectionsRequestLimitClosesItInsteadOfPoolingIt() throws {
        let attempt = attempt(framing: .none, maxRequests: 1)
        attempt.complete(reusable: true)
        #expect(!channel.isActive)
        #expect(pool.takeIdle(key: connection.poolKey, idleTimeout: .seconds(60)) == nil)
    }

    @Test func aConnectionPastItsMaxDurationIsClosedInsteadOfPooled() throws {
        let young = attempt(framing: .none, maxAge: .seconds(3600))
        young.complete(reusable: true)
        #expect(pool.takeIdle(key: connection.poolKey, idleTimeout: .seconds(60), maxAge: .seconds(3600)) === connection)
        #expect(pool.takeIdle(key: connection.poolKey, idleTimeout: .seconds(60)) == nil, "taken: the pool is empty")
        let old = attempt(framing: .none, maxAge: .nanoseconds(0))
        old.complete(reusable: true)
        #expect(!channel.isActive)
    }

    @Test func anIdleConnectionPastItsMaxDurationIsNotTaken() throws {
        attempt(framing: .none).complete(reusable: true)
        #expect(pool.takeIdle(key: connection.poolKey, idleTimeout: .seconds(60), maxAge: .nanoseconds(0)) == nil)
    }

    @Test func anAbandonedAttemptClosesItsConnectionAndStopsReporting() throws {
        let attempt = attempt(framing: .none)
        attempt.close()
        #expect(!channel.isActive)
        #expect(connection.handler.receiver == nil)
        #expect(receiver.events.isEmpty)
    }

    @Test func theResponseReachesTheReceiverTheAttemptWasOpenedFor() throws {
        let attempt = attempt(framing: .none)
        attempt.sendHead()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
        #expect(receiver.events == ["head 200", "body ok", "end"])
    }

    final class Receiver: UpstreamResponseReceiver {
        var events: [String] = []
        func upstreamResponseHead(_ head: HTTP1ResponseHead) { events.append("head \(head.status)") }
        func upstreamResponseBody(_ body: ByteBuffer) { events.append("body \(String(buffer: body))") }
        func upstreamResponseEnd(_ trailers: HTTPHeaderBlock?) { events.append("end") }
        func upstreamReadComplete() {}
        func upstreamProtocolError() { events.append("protocol error") }
        func upstreamClosed() { events.append("closed") }
        func upstreamRefusedStream() { events.append("refused") }
        func upstreamWritabilityChanged(isWritable: Bool) {}
        func upstreamTunnelData(_ bytes: ByteBuffer) { events.append("tunnel") }
    }
}
