import NIOCore

/// Envoy's connection `idle_timeout` (Bootstrap `limits.idleTimeout`, default 1 h): a connection with
/// no request in progress and no bytes for that long is closed. One timer per connection per timeout
/// period, not one per request: activity only stamps a time, and the timer, when it fires early,
/// re-arms for the time left.
struct IdleConnectionTimer {
    let timeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var task: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    mutating func activity() { lastActivity = .now() }

    /// Arms the timer; `fire` runs when the connection has been quiet for `timeout`.
    mutating func start(on eventLoop: EventLoop, _ fire: @escaping () -> Void) {
        guard timeout > .zero else { return }
        task = eventLoop.assumeIsolated().scheduleTask(deadline: lastActivity + timeout, fire)
    }

    /// Whether the quiet period is over (else `start` again for the rest).
    var expired: Bool { NIODeadline.now() - lastActivity >= timeout }

    mutating func cancel() {
        task?.cancel()
        task = nil
    }
}
