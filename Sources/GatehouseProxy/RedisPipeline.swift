/// The bookkeeping of one pipelined Redis connection, without its I/O: which commands wait for a reply
/// and in what order, their deadlines, when a connection counts as stalled, and the back-off after a
/// failure. `RedisConnection` is its shell: it performs what the returned actions say. Times are
/// nanoseconds on a monotonic clock the caller reads (tests pass their own).
///
/// Replies come in the order commands were written, so the queue is matched head first. A command that
/// timed out keeps its place (without its waiter) to be matched with its late reply.
struct RedisPipeline<Waiter> {
    enum Phase: Equatable {
        case idle
        case connecting
        case ready
        /// Commands are refused until `until`; the next one after it connects again.
        case backingOff(until: Int64)
    }

    /// What to do with a command.
    enum Send: Equatable {
        /// Fail it at once: the connection failed (`why`) and is backing off.
        case refuse(String)
        /// Write it behind the commands already written. `connect`: there is no connection: write the
        /// handshake commands first, then this one, and connect (the bytes go out once connected).
        case write(connect: Bool)
    }

    /// What a reply is for.
    enum Reply {
        /// The reply to a command: hand it to `waiter` (nil: the command timed out, the reply is
        /// dropped). `recovered`: the first answer after a failure or a timeout.
        case command(waiter: Waiter?, recovered: Bool)
        /// The reply to the handshake command `name` (an error reply means the connection is refused).
        case handshake(String)
        /// Nothing was waiting: the connection cannot be trusted to match replies any more.
        case unexpected
    }

    /// What the timer found.
    struct TimerOutcome {
        /// Commands past their deadline, each to be failed as timed out.
        var expired: [Waiter] = []
        /// The connection owes a reply for longer than `stallLimit`: it must be dropped (`failed`).
        var stalled = false
        /// When to wake next, if anything is still owed.
        var wakeAt: Int64?
    }

    private struct Entry {
        var waiter: Waiter?
        var deadline: Int64
        /// A handshake command's name (AUTH, SELECT n).
        var handshake: String?
    }

    /// How long a command waits for its reply.
    let timeout: Int64
    /// The commands a new connection sends first, by name, in order.
    let handshakes: [String]
    private(set) var phase = Phase.idle
    /// Why the connection last failed: what a refused command is told.
    private(set) var lastProblem: String?
    /// When the caller's timer is armed to fire; nil when none is.
    private(set) var timerDeadline: Int64?
    private var entries: [Entry] = []
    /// Entries before `head` were answered (kept until the queue drains, to pop without shifting).
    private var head = 0
    /// Connection failures in a row, for the back-off.
    private var failures = 0
    /// A failure or a timeout happened since the last answer.
    private var troubled = false

    init(timeout: Int64, handshakes: [String] = []) {
        self.timeout = timeout
        self.handshakes = handshakes
    }

    /// A connection owing a reply for this long past a command's deadline is stuck: it is dropped.
    var stallLimit: Int64 { max(1_000_000_000, timeout * 20) }

    /// Commands written and not answered yet, handshakes included.
    var owed: Int { entries.count - head }

    /// A command for `waiter` at `now`. `armTimer`: the caller's timer is to be armed for this instant
    /// (none was armed).
    mutating func send(_ waiter: Waiter, now: Int64) -> (send: Send, armTimer: Int64?) {
        if case .backingOff(let until) = phase {
            guard now >= until else { return (.refuse(lastProblem ?? "reconnecting"), nil) }
            phase = .idle
        }
        var connect = false
        if phase == .idle {
            phase = .connecting
            connect = true
            for name in handshakes { entries.append(Entry(waiter: nil, deadline: now + timeout, handshake: name)) }
        }
        entries.append(Entry(waiter: waiter, deadline: now + timeout))
        var arm: Int64?
        if timerDeadline == nil {
            arm = now + timeout
            timerDeadline = arm
        }
        return (.write(connect: connect), arm)
    }

    /// The connection is up. false: nothing was connecting any more (the attempt was given up): the
    /// caller closes the new connection.
    mutating func connected() -> Bool {
        guard phase == .connecting else { return false }
        phase = .ready
        return true
    }

    /// The next reply, matched with the oldest command owed.
    mutating func received() -> Reply {
        guard phase == .ready, head < entries.count else { return .unexpected }
        let entry = entries[head]
        head += 1
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1_024, head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
        if let name = entry.handshake { return .handshake(name) }
        let recovered = troubled
        if troubled {
            troubled = false
            failures = 0
        }
        return .command(waiter: entry.waiter, recovered: recovered)
    }

    /// The connection is gone (or never came, or was refused, or stalled): every command owed fails,
    /// and commands are refused until the back-off ends: 100 ms, doubling to 2 s, less an eighth plus up
    /// to a quarter by `jitter` (0..<1), so loops and replicas do not reconnect in step. Returns the
    /// waiters to fail.
    mutating func failed(_ why: String, now: Int64, jitter: Double) -> [Waiter] {
        failures += 1
        troubled = true
        lastProblem = why
        let base = Int64(min(2_000, 100 << min(failures - 1, 5)))
        let delay = base - base / 8 + Int64(jitter * Double(base / 4))
        phase = .backingOff(until: now + delay * 1_000_000)
        let waiting = entries[head...].compactMap(\.waiter)
        entries.removeAll()
        head = 0
        return waiting
    }

    /// The caller's timer fired at `now`: fails the commands past their deadline, judges a stall, and
    /// says when to wake next.
    mutating func timerFired(now: Int64) -> TimerOutcome {
        timerDeadline = nil
        var outcome = TimerOutcome()
        var next: Int64?
        for index in head..<entries.count {
            guard let waiter = entries[index].waiter else { continue }
            if entries[index].deadline <= now {
                entries[index].waiter = nil
                troubled = true
                outcome.expired.append(waiter)
            } else if next == nil {
                next = entries[index].deadline
            }
        }
        guard head < entries.count else { return outcome }
        let stall = entries[head].deadline + stallLimit
        if stall <= now, phase == .ready || phase == .connecting {
            outcome.stalled = true
        } else {
            // Wake for the next deadline, or to judge the stall of what is owed.
            let wake = next.map { min($0, stall) } ?? stall
            outcome.wakeAt = wake
            timerDeadline = wake
        }
        return outcome
    }
}
