import ArgumentParser
import Foundation
import Logging

/// Writes diagnostics to standard error, one line each: `gatehouse: message` (the format operators and
/// the docs know, whatever the level), or a JSON object per line for journald and log shippers.
struct DiagnosticsLogHandler: LogHandler {
    enum Format: String, CaseIterable, Sendable {
        case text
        case json
    }

    let format: Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line = switch format {
        case .text: Self.textLine(event.message.description, metadata: merged)
        case .json: Self.jsonLine(event.message.description, level: event.level, label: "gatehouse",
                                  metadata: merged, at: Date())
        }
        // One write(2) per line, so lines from several threads never interleave.
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { _ = Foundation.write(2, $0.baseAddress, $0.count) }
    }

    static func textLine(_ message: String, metadata: Logger.Metadata) -> String {
        guard !metadata.isEmpty else { return "gatehouse: \(message)" }
        let pairs = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "gatehouse: \(message) \(pairs)"
    }

    static func jsonLine(_ message: String, level: Logger.Level, label: String, metadata: Logger.Metadata,
                         at date: Date) -> String {
        var object: [String: String] = [:]
        for (key, value) in metadata { object[key] = "\(value)" }
        object["time"] = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
        object["level"] = level.rawValue
        object["logger"] = label
        object["message"] = message
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension DiagnosticsLogHandler.Format: ExpressibleByArgument {}
