import NIOCore
import Testing
@testable import GatehouseProxy

/// The receive-window rule of the HTTP/2 connection handler, and the limit its server preface
/// advertises, without a socket.
@Suite struct HTTP2FlowControlTests {
    @Test func aWindowIsOpenedAgainOnlyOnceHalfOfItIsSpent() {
        var window = HTTP2InboundWindow(target: 65_535)
        let first = window.windowChanged(to: 65_535 - 16_384)
        #expect(first == nil, "a quarter spent: no WINDOW_UPDATE yet")
        let second = window.windowChanged(to: 65_535 - 40_000)
        #expect(second == 40_000, "past half: the window is topped up to its target in one update")
        #expect(window.window == 65_535)
    }

    @Test func heldBytesKeepTheClientsWindowClosedUntilTheyAreConsumed() {
        var window = HTTP2InboundWindow(target: 65_535)
        window.held(50_000)
        let afterData = window.windowChanged(to: 15_535)
        #expect(afterData == nil, "the upstream has not taken the bytes: the client must wait")
        let partly = window.consumed(10_000)
        #expect(partly == nil, "40 000 still held: the window counts as 55 535 open")
        let rest = window.consumedAll()
        #expect(rest == 50_000)
        #expect(window.window == 65_535 && window.unconsumed == 0)
    }

    @Test func aWindowDrivenBelowZeroGetsItsDeficitBack() {
        var window = HTTP2InboundWindow(target: 65_535)
        let increment = window.windowChanged(to: -1_000)
        #expect(increment == 66_535)
    }

    @Test func noUpdateIsSentOnceThePeerEndedItsSide() {
        var window = HTTP2InboundWindow(target: 65_535)
        window.held(60_000)
        window.peerEnded()
        let afterEnd = window.windowChanged(to: 5_535)
        let consumed = window.consumedAll()
        #expect(afterEnd == nil && consumed == nil, "a WINDOW_UPDATE on a half-closed stream is a stream error")
    }

    /// NIO's server preface: SETTINGS with MAX_CONCURRENT_STREAMS (3) = 200, MAX_HEADER_LIST_SIZE (6) and
    /// ENABLE_CONNECT_PROTOCOL (8).
    static func preface(maxConcurrentStreams: UInt32 = 200) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeBytes([0, 0, 18, 0x4, 0, 0, 0, 0, 0])
        bytes.writeInteger(UInt16(6)); bytes.writeInteger(UInt32(16_384))
        bytes.writeInteger(UInt16(3)); bytes.writeInteger(maxConcurrentStreams)
        bytes.writeInteger(UInt16(8)); bytes.writeInteger(UInt32(1))
        return bytes
    }

    @Test func thePrefaceAdvertisesTheConfiguredLimitWhileNIOEnforcesTheHardCap() {
        #expect(HTTP2PrefaceSettings.hardCap(for: 100) == 200)
        #expect(HTTP2PrefaceSettings.hardCap(for: 10) == 110)
        var bytes = Self.preface()
        #expect(HTTP2PrefaceSettings.advertise(maxConcurrentStreams: 100, in: &bytes))
        #expect(bytes == Self.preface(maxConcurrentStreams: 100), "only the one value changes")
    }

    @Test func bytesThatAreNotASettingsFrameAreLeftAlone() {
        var ack = ByteBuffer(bytes: [0, 0, 0, 0x4, 0x1, 0, 0, 0, 0])
        #expect(!HTTP2PrefaceSettings.advertise(maxConcurrentStreams: 100, in: &ack))
        var truncated = Self.preface()
        truncated.moveWriterIndex(to: 15)
        let before = truncated
        #expect(!HTTP2PrefaceSettings.advertise(maxConcurrentStreams: 100, in: &truncated))
        #expect(truncated == before)
        var headers = Self.preface()
        headers.setInteger(UInt8(0x1), at: 3)
        #expect(!HTTP2PrefaceSettings.advertise(maxConcurrentStreams: 100, in: &headers))
    }
}
