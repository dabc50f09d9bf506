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
        /// Set by `reopen()`; the writer thread opens the file again before its next write.
        var reopenRequested = false
        var reopenResult: String?? = nil
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let queue = DispatchQueue(label: "gatehouse-accesslog")
    /// Written only by the writer thread (on reopen), read by it and by `close()` after it stopped.
    private let descriptor: Atomic<Int32>
    private let path: String?
    private let reopened = DispatchSemaphore(value: 0)
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
        self.path = path
        if let path {
            let fd = Self.openFile(path)
            guard fd >= 0 else {
                throw AccessLogError(message: "cannot open access log \(path): \(String(cString: strerror(errno)))")
            }
            descriptor = Atomic(fd)
        } else {
            descriptor = Atomic(STDOUT_FILENO)
        }
        queue.async { [unowned self] in self.run() }
    }

    /// Writes to a file (not standard output), so `reopen()` means something.
    public var writesToFile: Bool { path != nil }

    /// Opens the file again by its path (SIGUSR1, after logrotate moved it): lines buffered so far go
    /// to the old file, later ones to the new. Waits for the writer thread; nil on success, otherwise why
    /// the old file is still in use. Standard output is never reopened.
    public func reopen() -> String? {
        guard path != nil else { return nil }
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.reopenRequested = true
            return true
        }
        guard accepted else { return "the access log is closed" }
        wakeUp.signal()
        reopened.wait()
        return state.withLock { state in
            defer { state.reopenResult = nil }
            return state.reopenResult ?? nil
        }
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
        if path != nil { _ = Glibc.close(descriptor.load(ordering: .relaxed)) }
    }

    private func run() {
        while true {
            let (batch, closed, reopen) = state.withLock { state -> ([UInt8], Bool, Bool) in
                let batch = state.pending
                state.pending = []
                state.flushRequested = false
                defer { state.reopenRequested = false }
                return (batch, state.closed, state.reopenRequested)
            }
            if !batch.isEmpty { writeAll(batch) }
            if reopen {
                let result = reopenFile()
                state.withLock { $0.reopenResult = .some(result) }
                reopened.signal()
            }
            if closed && batch.isEmpty { break }
            if batch.count < batchBytes { _ = wakeUp.wait(timeout: .now() + flushInterval) }
        }
        finished.signal()
    }

    /// Appending, created if missing; -1 with errno set on failure.
    private static func openFile(_ path: String) -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    }

    private func reopenFile() -> String? {
        guard let path else { return nil }
        let fd = Self.openFile(path)
        guard fd >= 0 else { return "cannot reopen access log \(path): \(String(cString: strerror(errno)))" }
        let old = descriptor.exchange(fd, ordering: .relaxed)
        _ = Glibc.close(old)
        return nil
    }

    private func writeAll(_ bytes: [UInt8]) {
        let descriptor = descriptor.load(ordering: .relaxed)
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
