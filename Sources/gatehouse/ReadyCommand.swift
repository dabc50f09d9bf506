import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `gatehouse ready`: asks a running gateway's admin server for `/ready` and exits 0 only on 200. It is
/// the container HEALTHCHECK, so the runtime image needs no curl; plain sockets, HTTP/1.0, no TLS.
struct ReadyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ready", abstract: "Exit 0 when the gateway's admin server answers /ready with 200.")

    @Option(help: "The admin server, HOST:PORT (IPv4 or [IPv6]).")
    var admin = "127.0.0.1:15000"

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 3

    func run() throws {
        guard let (host, port) = Self.split(admin) else {
            throw ValidationError("--admin must be HOST:PORT, got \(admin)")
        }
        let status = Self.status(host: host, port: port, path: "/ready", timeout: timeout)
        switch status {
        case .success(200):
            print("ready")
        case .success(let code):
            print("not ready: /ready answered \(code)")
            throw ExitCode(1)
        case .failure(let problem):
            print("not ready: \(problem.message)")
            throw ExitCode(1)
        }
    }

    static func split(_ address: String) -> (String, UInt16)? {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            return nil
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    struct Problem: Error { let message: String }

    /// The status code of `GET path`, or why there is none.
    static func status(host: String, port: UInt16, path: String, timeout: Double) -> Result<Int, Problem> {
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
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return .failure(Problem(message: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))"))
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            return .failure(Problem(message: "cannot send the request"))
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while answer.count < 64 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[..<count]
        }
        // "HTTP/1.1 200 OK": the code is the second word.
        let words = String(decoding: answer, as: UTF8.self).split(separator: " ", maxSplits: 2)
        guard words.count >= 2, words[0].hasPrefix("HTTP/"), let code = Int(words[1]) else {
            return .failure(Problem(message: "no HTTP answer from \(host):\(port)"))
        }
        return .success(code)
    }
}
