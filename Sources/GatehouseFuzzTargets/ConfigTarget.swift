import GatehouseConfig
import GatehouseSnapshot

/// YAML → config model → validation → compiled snapshot, as `validate` and a reload run it on a file an
/// operator (or an attacker with write access to a watched directory) dropped in. It must end, in
/// bounded time and memory, with either diagnostics or a snapshot.
enum ConfigTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        var set = ConfigSet()
        var diagnostics: [Diagnostic] = []
        set.files.append("fuzz.yaml")
        ConfigLoader.load(text: String(decoding: data, as: UTF8.self), file: "fuzz.yaml", into: &set,
                          diagnostics: &diagnostics)
        diagnostics += ConfigValidator.validate(set)
        let loaded = ConfigPipeline.checked(set, diagnostics: diagnostics)
        for diagnostic in loaded.diagnostics where diagnostic.location.line < 1 || diagnostic.location.column < 1 {
            return "a diagnostic without a place: \(diagnostic)"
        }
        guard !loaded.hasErrors else { return nil }
        do {
            _ = try SnapshotCompiler.compile(loaded, version: 1)
        } catch is ConfigRefused {
            return "a config without errors was refused by the compiler"
        } catch {
            // Route compilation may still refuse (a regex PCRE2 takes but cannot JIT…): a diagnostic, not a crash.
        }
        return nil
    }
}
