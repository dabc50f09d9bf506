import Foundation
import Synchronization

/// Writes access-log lines from a dedicated thread so an event loop never waits on a disk. Lines are
/// appended to a buffer under a lock; the writer thread swaps the buffer out and writes it with write(2).
/// A failed write (disk full, file gone) drops those lines and counts them; it never crashes the gateway.
public final class AccessLogWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var closed = false
        var flushRequested = false
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "gatehouse-accesslog")
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let finished = DispatchSemaphore(value: 0)
    private let droppedLinesCounter = Atomic<Int>(0)
    private let writtenLinesCounter = Atomic<Int>(0)
    /// Above this many buffered bytes new lines are dropped (and counted) rather than growing memory.
    private let maxPendingBytes = 64 << 20
    private let batchBytes = 64 << 10
    private let flushInterval: DispatchTimeInterval = .milliseconds(50)

    public var droppedLines: Int { droppedLinesCounter.load(ordering: .relaxed) }
    public var writtenLines: Int { writtenLinesCounter.load(ordering: .relaxed) }

    /// `path` nil writes to standard output.
    public init(path: String?) throws {
        if let path {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw AccessLogError(message: "cannot open access log \(path): \(String(cString: strerror(errno)))")
            }
            descriptor = fd
            ownsDescriptor = true
        } else {
            descriptor = STDOUT_FILENO
            ownsDescriptor = false
        }
        queue.async { [unowned self] in self.run() }
    }

    /// Appends a line. The writer thread is woken only when a batch is worth writing; otherwise it
    /// writes what accumulated every `flushInterval`. Waking it per line would cost a futex round trip
    /// and a context switch per request.
    public func write(_ line: [UInt8]) {
        let outcome = state.withLock { state -> (accepted: Bool, wake: Bool) in
            guard !state.closed, state.pending.count < maxPendingBytes else { return (false, false) }
            state.pending.append(contentsOf: line)
            guard state.pending.count >= batchBytes, !state.flushRequested else { return (true, false) }
            state.flushRequested = true
            return (true, true)
        }
        if !outcome.accepted {
            droppedLinesCounter.add(1, ordering: .relaxed)
            return
        }
        if outcome.wake { wakeUp.signal() }
    }

    /// Writes everything buffered and stops the thread. Call once at shutdown.
    public func close() {
        state.withLock { $0.closed = true }
        wakeUp.signal()
        finished.wait()
        if ownsDescriptor { _ = Glibc.close(descriptor) }
    }

    private func run() {
        while true {
            let (batch, closed) = state.withLock { state -> ([UInt8], Bool) in
                let batch = state.pending
                state.pending = []
                state.flushRequested = false
                return (batch, state.closed)
            }
            if !batch.isEmpty { writeAll(batch) }
            if closed && batch.isEmpty { break }
            if batch.count < batchBytes { _ = wakeUp.wait(timeout: .now() + flushInterval) }
        }
        finished.signal()
    }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        let lines = bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    break
                }
                offset += written
            }
        }
        if offset < bytes.count {
            droppedLinesCounter.add(lines, ordering: .relaxed)
        } else {
            writtenLinesCounter.add(lines, ordering: .relaxed)
        }
    }
}

public struct AccessLogError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
