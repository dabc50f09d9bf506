import NIOCore

/// The concurrent-stream limit a client is told, apart from the one NIO enforces.
///
/// NIO's HTTP/2 state machine enforces exactly the SETTINGS_MAX_CONCURRENT_STREAMS it advertises, and
/// treats a client going over it as a connection error (GOAWAY, every stream lost). RFC 9113 §5.1.2 makes
/// it a stream error: the gateway refuses the excess streams itself with REFUSED_STREAM, which tells the
/// client they were not processed and may be retried. So NIO is given a higher hard cap (past which a
/// client is abusive and does lose the connection) and the server preface's SETTINGS frame, the first
/// bytes NIO writes, is rewritten on its way out to advertise the configured limit.
enum HTTP2PrefaceSettings {
    /// The cap NIO enforces for a configured limit: room for a client that raced a burst of streams
    /// past the limit, refused one by one, before the connection is given up on.
    static func hardCap(for limit: Int) -> Int { max(limit * 2, limit + 100) }

    /// Rewrites the MAX_CONCURRENT_STREAMS value of the SETTINGS frame that `bytes` starts with. Returns
    /// false (leaving the bytes as they are) when they do not start with a whole SETTINGS frame that
    /// carries the setting.
    static func advertise(maxConcurrentStreams limit: UInt32, in bytes: inout ByteBuffer) -> Bool {
        let start = bytes.readerIndex
        guard bytes.readableBytes >= 9,
              let length = bytes.getInteger(at: start, as: UInt32.self).map({ Int($0 >> 8) }),
              bytes.getInteger(at: start + 3, as: UInt8.self) == 0x4,  // SETTINGS
              bytes.getInteger(at: start + 4, as: UInt8.self) == 0,  // not an ACK
              bytes.getInteger(at: start + 5, as: UInt32.self) == 0,  // stream 0
              length % 6 == 0, bytes.readableBytes >= 9 + length else { return false }
        var offset = start + 9
        while offset < start + 9 + length {
            if bytes.getInteger(at: offset, as: UInt16.self) == 0x3 {  // SETTINGS_MAX_CONCURRENT_STREAMS
                bytes.setInteger(limit, at: offset + 2)
                return true
            }
            offset += 6
        }
        return false
    }
}

/// Applies `HTTP2PrefaceSettings` to the first bytes NIO's HTTP/2 handler writes, then leaves the
/// pipeline. Sits between that handler and the transport (TLS or the socket).
final class HTTP2PrefaceSettingsHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: UInt32
    init(maxConcurrentStreams: Int) { limit = UInt32(clamping: maxConcurrentStreams) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        _ = HTTP2PrefaceSettings.advertise(maxConcurrentStreams: limit, in: &bytes)
        context.write(wrapOutboundOut(bytes), promise: promise)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
