import GatehouseHTTP1
import GatehouseSnapshot
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing
@testable import GatehouseProxy

/// `DownstreamHandler` on an `EmbeddedChannel`: where `HTTP1ServerConnectionState`'s actions meet NIO
/// (what is written, when the channel closes, when reads are held). Routes answer directly, so no
/// upstream is involved and every step is synchronous.
@Suite(.serialized) final class DownstreamHandlerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let threadPool = NIOThreadPool(numberOfThreads: 1)
    let channel = EmbeddedChannel()

    static let config = """
        apiVersion: gatehouse.dev/v1alpha1
        kind: Bootstrap
        metadata: {name: edge, namespace: istio-system}
        spec: {labels: {istio: ingressgateway}}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: edge, namespace: istio-system}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 8080, name: http, protocol: HTTP}
            hosts: ["*"]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: direct, namespace: istio-system}
        spec:
          hosts: ["example.com"]
          gateways: [edge]
          http:
          - directResponse: {status: 200, body: {string: "hi"}}

        """

    init() throws {
        let loaded = ConfigPipeline.load(text: Self.config, file: "t.yaml")
        let snapshot = try SnapshotCompiler.compile(loaded, version: 1)
        let runtime = try ProxyRuntime(store: SnapshotStore(snapshot), accessLog: nil, group: group, threadPool: threadPool)
        let loop = LoopContext(eventLoop: channel.eventLoop)
        let handler = DownstreamHandler(runtime: runtime, loop: loop, listenerPort: 8080, limits: HTTP1Limits(),
                                        headersTimeout: .seconds(10), tls: nil)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    deinit {
        // Timers the handler armed on the embedded loop are run (or were cancelled) before it goes, so
        // nothing they captured outlives the test.
        _ = try? channel.finish()
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        try? channel.embeddedEventLoop.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        try? threadPool.syncShutdownGracefully()
    }

    func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the client so far.
    func written() throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    static func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test func pipelinedRequestsInOneReadAreAnsweredInOrderOnTheSameConnection() throws {
        try send("GET /a HTTP/1.1\r\nhost: example.com\r\n\r\nGET /b HTTP/1.1\r\nhost: example.com\r\n\r\n")
        let out = try written()
        #expect(Self.count("HTTP/1.1 200 OK\r\n", in: out) == 2)
        #expect(!out.contains("connection: close"))
        #expect(channel.isActive)
    }

    @Test func aLocalReplyToARequestWithAnUnreadBodySendsNoContinueAndCloses() throws {
        try send("POST /up HTTP/1.1\r\nhost: example.com\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n")
        let out = try written()
        #expect(!out.contains("100 Continue"), "the body is not wanted: the client must not be told to send it")
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(out.contains("connection: close\r\n"))
        #expect(!channel.isActive)
    }

    @Test func anHTTP10ClientWithoutKeepAliveIsAnsweredThenClosed() throws {
        try send("GET / HTTP/1.0\r\nhost: example.com\r\n\r\n")
        let out = try written()
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(out.contains("connection: close\r\n"))
        #expect(!channel.isActive)
    }

    @Test func anHTTP10KeepAliveClientIsToldSoAndKeptOpen() throws {
        try send("GET / HTTP/1.0\r\nhost: example.com\r\nconnection: keep-alive\r\n\r\n")
        #expect(try written().contains("connection: keep-alive\r\n"))
        #expect(channel.isActive)
    }

    @Test func aMalformedHeadIsAnswered400AndTheConnectionCloses() throws {
        try send("GET / HTTP/1.1\r\nhost : example.com\r\n\r\n")
        let out = try written()
        #expect(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(!channel.isActive)
    }

    @Test func aDrainClosesAnIdleConnectionAndLetsABusyOneFinishWithClose() throws {
        try send("GET / HTTP/1.1\r\nhost: example.com\r\n\r\n")
        _ = try written()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!channel.isActive, "an idle keep-alive connection closes at once on drain")
    }

    @Test func aDrainWithHalfARequestBufferedAnswersItWithClose() throws {
        try send("GET / HTTP/1.1\r\nhost: exam")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        try send("ple.com\r\n\r\n")
        let out = try written()
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(out.contains("connection: close\r\n"))
        #expect(!channel.isActive)
    }
}
