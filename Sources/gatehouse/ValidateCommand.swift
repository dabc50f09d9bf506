import ArgumentParser
import GatehouseConfig
import GatehouseIdentity
import GatehouseSnapshot

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a configuration and print every problem as FILE:LINE:COL: Kind ns/name: field: message.")

    @OptionGroup var config: ConfigPaths

    func run() throws {
        var (set, diagnostics) = ConfigLoader.load(paths: config.resolved)
        if !diagnostics.hasErrors {
            // Certificate files are part of the config: check that they exist and load.
            let snapshot = try SnapshotCompiler.compile(set, version: 0)
            diagnostics += TLSContextStore().prepare(snapshot)
        }
        for diagnostic in diagnostics.sorted(by: DiagnosticOrder.precedes) { print(diagnostic) }
        let errors = diagnostics.errors.count
        if errors > 0 {
            print("\(errors) error(s), \(diagnostics.warnings.count) warning(s)")
            throw ExitCode(1)
        }
        print("OK: \(set.summary)\(diagnostics.isEmpty ? "" : ", \(diagnostics.count) warning(s)")")
    }
}

enum DiagnosticOrder {
    static func precedes(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        (a.location.file, a.location.line, a.location.column) < (b.location.file, b.location.line, b.location.column)
    }
}
