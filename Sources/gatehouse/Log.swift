import Logging

/// The gateway's diagnostics (start-up, reloads, certificate rotation, drain), through swift-log so
/// libraries log the same way and a deployment can choose the format (`DiagnosticsLogHandler`). The
/// access log is not a diagnostic: it keeps its own fast writer.
enum Log {
    /// Created on first use, after `run` bootstrapped the logging system with the chosen format.
    static let logger = Logger(label: "gatehouse")

    static func info(_ message: String) { logger.info("\(message)") }
    static func warning(_ message: String) { logger.warning("\(message)") }
    static func error(_ message: String) { logger.error("\(message)") }
}
