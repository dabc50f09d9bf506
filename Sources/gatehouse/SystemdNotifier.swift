import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// systemd's notify protocol without libsystemd: one datagram per state change to the AF_UNIX socket
/// named by `NOTIFY_SOCKET` (`Type=notify`). Outside systemd the variable is unset and every call is a
/// no-op. A send that fails is logged once and otherwise ignored: the gateway serves either way.
final class SystemdNotifier: Sendable {
    /// The socket address, or nil when not run by systemd.
    let socketPath: String?
    /// Half of `WATCHDOG_USEC`, when systemd asked this process for keep-alives.
    let watchdogInterval: Duration?

    /// Reads the environment (call before any thread starts: see `RunCommand`).
    init(environment: [String: String]) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        // Abstract sockets are `@name`; other schemes (vsock:) are not for a service on this host.
        socketPath = path.flatMap { $0.hasPrefix("/") || $0.hasPrefix("@") ? $0 : nil }
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// After the listeners are bound and the admin server is up.
    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// Before a reload starts. systemd ≥ 253 wants MONOTONIC_USEC with it, to tell this reload from an
    /// older one; 252 ignores it.
    func reloading() { send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())") }

    /// After a reload, applied or rejected: the gateway serves again either way.
    func reloaded(status: String) { send("READY=1\nSTATUS=\(status)") }

    func stopping() { send("STOPPING=1\nSTATUS=draining") }

    func watchdog() { send("WATCHDOG=1") }

    /// Keep-alives every half `WATCHDOG_USEC`, when systemd asked for them. Sent from a task, not an event
    /// loop, so a wedged event loop does not stop them; systemd's watchdog catches a wedged process.
    func watchdogService() -> PeriodicService? {
        guard let watchdogInterval, socketPath != nil else { return nil }
        return PeriodicService(description: "systemd watchdog", interval: watchdogInterval) { [self] in watchdog() }
    }

    func send(_ message: String) {
        guard let socketPath else { return }
        if let error = Self.sendDatagram(message, to: socketPath) {
            Log.info("sd_notify to \(socketPath) failed: \(error)")
        }
    }

    /// nil on success; otherwise what went wrong.
    static func sendDatagram(_ message: String, to path: String) -> String? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // the abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return "socket path too long" }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        let sent = message.utf8CString.withUnsafeBufferPointer { text in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                    sendto(fd, text.baseAddress, text.count - 1, Int32(MSG_NOSIGNAL), sockaddrPointer, length)
                }
            }
        }
        return sent < 0 ? String(cString: strerror(errno)) : nil
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
