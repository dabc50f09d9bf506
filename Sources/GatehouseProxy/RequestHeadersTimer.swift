import NIOCore

/// Envoy's `request_headers_timeout`: runs from the first byte of a request head until the head is
/// complete, so a client that opens a request and dribbles its headers gets 408. An idle keep-alive
/// connection with no bytes is not timed by this. The timer is armed only when a read leaves a head
/// incomplete: a head that arrives in one read (nearly all of them) never costs a timer.
struct RequestHeadersTimer {
    let timeout: TimeAmount
    private var task: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// A partial head is buffered: start timing it unless already timing.
    mutating func headIncomplete(on eventLoop: EventLoop, onTimeout: @escaping () -> Void) {
        guard task == nil, timeout > .zero else { return }
        task = eventLoop.assumeIsolated().scheduleTask(in: timeout, onTimeout)
    }

    /// The head arrived, or the connection is going away.
    mutating func cancel() {
        task?.cancel()
        task = nil
    }

    /// The timer fired (it is no longer scheduled).
    mutating func fired() { task = nil }
}
