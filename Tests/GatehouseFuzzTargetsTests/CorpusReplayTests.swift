import Foundation
import GatehouseHTTP1
@testable import GatehouseFuzzTargets
import Testing

/// Every input under `Fuzz/corpus/<target>/` — the seeds, and every input a fuzzer found a crash or a
/// broken invariant with — runs through its target on each test run.
@Suite struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func inputs(_ target: FuzzTarget) -> [URL] {
        let directory = corpus.appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyCorpusInputKeepsItsInvariants(_ target: FuzzTarget) throws {
        let files = Self.inputs(target)
        #expect(!files.isEmpty, "Fuzz/corpus/\(target.rawValue) has no seeds")
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            let violation = target.run(bytes)
            #expect(violation == nil, "\(target.rawValue)/\(file.lastPathComponent): \(violation ?? "")")
        }
    }

    @Test func theInvariantsCanFail() {
        // Checks that could never fail would pass every corpus: each one is shown a violation.
        var smuggled = HTTPHeaderBlock()
        smuggled.add("x-a", "1\r\nx-b: 2")
        let head = RequestHead(method: "GET", target: "/", version: .http1_1, headers: smuggled, framing: .none,
                                    connection: ConnectionOptions(), hostCount: 0, expectsContinue: false)
        #expect(HTTP2MappingTarget.roundTrip(head) != nil)
        var split = HTTP1DecoderTargets.Transcript()
        split.events = ["GET / none -", "end:-"]
        #expect(HTTP1DecoderTargets.compare(HTTP1DecoderTargets.Transcript(), split) != nil)
    }
}
