// `gatehouse-fuzz`: libFuzzer over one of the targets in GatehouseFuzzTargets, named by
// GATEHOUSE_FUZZ_TARGET. It exists only in a package built with GATEHOUSE_FUZZ=1 and `-sanitize=fuzzer`
// (see scripts/fuzz). SwiftPM makes this file the program's main, so libFuzzer is started through its
// driver entry point rather than its own main.
import CLibFuzzer
import GatehouseFuzzTargets

#if canImport(Glibc)
import Glibc
#endif

enum Selected {
    static let target: FuzzTarget = {
        guard let name = getenv("GATEHOUSE_FUZZ_TARGET").map({ String(cString: $0) }),
              let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            fatalError("set GATEHOUSE_FUZZ_TARGET to one of: \(names)")
        }
        return target
    }()
}

/// Also libFuzzer's well-known entry point, which `-sanitize=fuzzer`'s own (unused) main refers to.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if let violation = Selected.target.run(UnsafeRawBufferPointer(start: data, count: size)) {
        fatalError("\(Selected.target.rawValue): \(violation)")
    }
    return 0
}

Selected.target.prepare()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
