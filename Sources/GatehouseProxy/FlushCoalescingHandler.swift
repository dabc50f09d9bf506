import NIOCore

/// Sits under an HTTP/2 connection's frame handler and turns its many flushes into one per event-loop
/// tick. Every stream that finishes a response flushes, and NIO's HTTP/2 handler passes each stream
/// flush down to the connection unless it is inside a read of that connection; responses are driven
/// by upstream reads, so without this each one cost its own TLS record and write(2). Deferred flushes
/// run from a task in the same loop iteration, so nothing waits on a later event.
final class FlushCoalescingHandler: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny

    private var flushScheduled = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            guard flushScheduled else { return }
            flushScheduled = false
            context.flush()
        }
    }

    /// What was written before a close (a GOAWAY, say) must leave before it.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushScheduled {
            flushScheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}
