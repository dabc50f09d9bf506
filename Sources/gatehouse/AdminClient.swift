#if canImport(Glibc)
import Glibc
#endif

/// A running gateway's admin server, asked over plain sockets (HTTP/1.0, no TLS): `gatehouse ready` is
/// the container HEALTHCHECK, so the runtime image needs no curl, and `explain --admin` reads counters.
struct AdminClient {
    let host: String
    let port: UInt16
    /// Seconds to wait for each of connect, send and every read.
    let timeout: Double

    struct Problem: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    struct Answer {
        var status: Int
        var body: [UInt8]
    }

    /// `address` is HOST:PORT (IPv4, a name, or [IPv6]); nil when it is not.
    init?(_ address: String, timeout: Double) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            return nil
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// `GET path`: the status and the body (at most `limit` bytes are read), or why there is none.
    func get(_ path: String, limit: Int = 1 << 20) -> Result<Answer, Problem> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            return .failure(Problem(message: "cannot resolve \(host)"))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Problem(message: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return .failure(Problem(message: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))"))
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            return .failure(Problem(message: "cannot send the request"))
        }
        // HTTP/1.0: the server closes after the answer.
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < limit {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[..<count]
        }
        // "HTTP/1.1 200 OK": the code is the second word; the body follows the blank line.
        let words = String(decoding: answer.prefix(64), as: UTF8.self).split(separator: " ", maxSplits: 2)
        guard words.count >= 2, words[0].hasPrefix("HTTP/"), let status = Int(words[1]) else {
            return .failure(Problem(message: "no HTTP answer from \(host):\(port)"))
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        let bodyStart = (0..<max(0, answer.count - 3)).first { answer[$0..<$0 + 4].elementsEqual(separator) }.map { $0 + 4 }
        return .success(Answer(status: status, body: bodyStart.map { Array(answer[$0...]) } ?? []))
    }
}
