/// One problem found in the configuration, printed as
/// `FILE:LINE:COL: Kind ns/name: field.path: message` so editors and CI can jump to it.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var location: SourceLocation
    /// `Kind ns/name`, or a short label such as `YAML` when no resource could be read.
    public var resource: String
    /// Dotted field path inside the resource, e.g. `spec.http[0].route[1].weight`.
    public var path: String
    public var message: String
    public var severity: Severity

    public init(location: SourceLocation, resource: String, path: String, message: String,
                severity: Severity = .error) {
        self.location = location
        self.resource = resource
        self.path = path
        self.message = message
        self.severity = severity
    }

    public var description: String {
        let text = severity == .warning ? "warning: \(message)" : message
        return "\(location): \(resource): \(path.isEmpty ? "-" : path): \(text)"
    }
}

extension Array where Element == Diagnostic {
    public var errors: [Diagnostic] { filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { filter { $0.severity == .warning } }
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
