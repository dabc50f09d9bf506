import GatehouseConfig

/// A configuration read from its files and checked in full: the model's checks (GatehouseConfig) and the
/// parse of every security resource, which is also what `SnapshotCompiler` compiles from, so what
/// `validate` accepts and what the gateway enforces come from one pass.
public struct LoadedConfig: Sendable {
    public let set: ConfigSet
    public let diagnostics: [Diagnostic]
    let security: ParsedSecurity

    public var hasErrors: Bool { diagnostics.hasErrors }
}

public enum ConfigPipeline {
    /// Loads and checks the files and directories at `paths`. Usable only when no diagnostic is an error.
    public static func load(paths: [String]) -> LoadedConfig {
        let (set, diagnostics) = ConfigLoader.load(paths: paths)
        return checked(set, diagnostics: diagnostics)
    }

    /// Loads and checks one configuration given as text (tests, the microbenchmark), as a file would be.
    public static func load(text: String, file: String) -> LoadedConfig {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        ConfigLoader.load(text: text, file: file, into: &set, diagnostics: &diagnostics)
        diagnostics += ConfigValidator.validate(set)
        return checked(set, diagnostics: diagnostics)
    }

    /// Adds the security checks to a set decoded and model-checked elsewhere (tests, the fuzzer).
    public static func checked(_ set: ConfigSet, diagnostics: [Diagnostic]) -> LoadedConfig {
        let security = ParsedSecurity(set)
        return LoadedConfig(set: set, diagnostics: diagnostics + security.diagnostics, security: security)
    }
}

/// `SnapshotCompiler` was handed a configuration with errors: it compiles nothing rather than leave out
/// what it could not parse.
public struct ConfigRefused: Error, CustomStringConvertible {
    public let errors: [Diagnostic]
    public var description: String {
        "configuration has \(errors.count) error(s)" + (errors.first.map { ", the first: \($0)" } ?? "")
    }
}
