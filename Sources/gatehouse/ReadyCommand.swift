import ArgumentParser

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
        guard let client = AdminClient(admin, timeout: timeout) else {
            throw ValidationError("--admin must be HOST:PORT, got \(admin)")
        }
        switch client.get("/ready") {
        case .success(let answer) where answer.status == 200:
            print("ready")
        case .success(let answer):
            print("not ready: /ready answered \(answer.status)")
            throw ExitCode(1)
        case .failure(let problem):
            print("not ready: \(problem.message)")
            throw ExitCode(1)
        }
    }
}
