import ArgumentParser
import GatehouseConfig
import GatehouseIdentity
import GatehouseSnapshot

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a configuration and print every problem as FILE:LINE:COL: Kind ns/name: field: message.")

    @OptionGroup var config: ConfigPaths

    @Flag(help: "Fail on warnings too (for CI): a policy value that never matches, a host-port trap…")
    var strict = false

    func run() throws {
        let loaded = ConfigPipeline.load(paths: config.resolved)
        var diagnostics = loaded.diagnostics
        var snapshot: Snapshot?
        if !diagnostics.hasErrors {
            // Certificate files are part of the config: check that they exist and load.
            snapshot = try SnapshotCompiler.compile(loaded, version: 0)
            diagnostics += TLSContextStore().prepare(snapshot!)
        }
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { print(diagnostic) }
        let errors = diagnostics.errors.count
        let warnings = diagnostics.warnings.count
        if errors > 0 || (strict && warnings > 0) {
            print("\(errors) error(s), \(warnings) warning(s)\(errors == 0 ? " (--strict: warnings fail)" : "")")
            throw ExitCode(1)
        }
        print("OK: \(loaded.set.summary)\(warnings == 0 ? "" : ", \(warnings) warning(s)")")
        if let snapshot { for line in ConfigNotices.lines(snapshot) { print(line) } }
    }
}

enum DiagnosticOrder {
    static func precedes(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        (a.location.file, a.location.line, a.location.column) < (b.location.file, b.location.line, b.location.column)
    }
}
