/// One receive window of an HTTP/2 connection (RFC 9113 §6.9): the connection's, or a stream's. NIO's
/// HTTP/2 handler tracks the window but never opens it again; without a stream multiplexer, that is
/// this handler's job. Pure: the window as NIO reports it in, WINDOW_UPDATE increments out.
///
/// Bytes received but not yet consumed (held while the upstream cannot take more) count as still
/// open, so the client's window closes exactly by what is held: that is the back-pressure a stream
/// gets, without ever stopping reads of the connection its neighbours share. The window is opened again
/// once it falls to half its target or below (as NIO's own `InboundWindowManager` does), so a steady
/// upload costs one WINDOW_UPDATE per half window, not one per DATA frame.
struct HTTP2InboundWindow: Equatable {
    /// The window size kept open.
    let target: Int
    /// The window as the peer sees it.
    private(set) var window: Int
    /// Received and not yet consumed.
    private(set) var unconsumed = 0
    /// The peer ended its side: it sends nothing more, so the window is never opened again (a
    /// WINDOW_UPDATE on a half-closed stream is a stream error).
    private(set) var closed = false

    init(target: Int, window: Int? = nil) {
        self.target = target
        self.window = window ?? target
    }

    /// NIO reports the window after a DATA frame or an update. Returns the increment to send now.
    mutating func windowChanged(to newWindow: Int) -> Int? {
        window = newWindow
        return increment()
    }

    /// DATA that is not consumed yet.
    mutating func held(_ bytes: Int) {
        unconsumed += bytes
    }

    /// Held bytes were consumed. Returns the increment to send now.
    mutating func consumed(_ bytes: Int) -> Int? {
        unconsumed = max(0, unconsumed - bytes)
        return increment()
    }

    /// Everything held was consumed.
    mutating func consumedAll() -> Int? {
        consumed(unconsumed)
    }

    mutating func peerEnded() {
        closed = true
    }

    private mutating func increment() -> Int? {
        guard !closed else { return nil }
        let effective = window + unconsumed
        guard effective <= target / 2 else { return nil }
        // A window driven below zero (by a SETTINGS change) needs its deficit back as well.
        let increment = effective < 0 ? min(target - effective, Int(Int32.max)) : target - effective
        guard increment > 0 else { return nil }
        window += increment
        return increment
    }
}
