@testable import GatehouseRouting
import Testing

/// Each spelling of `/admin` that Istio's advisories list must normalize to `/admin` under the modes
/// that Istio says catch it (a DENY on `/admin` then holds), and the rest must stay what they were.
@Suite struct PathNormalizerTests {
    func normalized(_ path: String, _ mode: PathNormalization) -> String? {
        try? PathNormalizer.normalize(Substring(path), mode: mode)
    }

    @Test(arguments: [
        ("/public/../admin", "/admin"),           // CVE-2019-9901
        ("/public/%2e%2e/admin", "/admin"),       // dot segments spelled as escapes
        ("/public/%2E./admin", "/admin"),
        ("/./admin", "/admin"),
        ("/%61dmin", "/admin"),                    // unreserved escape decoded
        ("/ad%6Din/", "/admin/"),
        ("\\admin", nil),                          // not absolute before the backslash becomes a slash
        ("/public\\..\\admin", "/admin"),         // backslashes as Envoy treats them
        ("/..", "/"),
        ("/a/b/..", "/a/"),
        ("/", "/"),
    ] as [(String, String?)])
    func baseCatchesDotSegmentsAndUnreservedEscapes(path: String, expected: String?) {
        #expect(normalized(path, .base) == expected)
    }

    @Test func baseKeepsReservedEscapesUppercasedAndDoubleSlashes() throws {
        #expect(normalized("/admin%2f", .base) == "/admin%2F")
        #expect(normalized("//admin", .base) == "//admin")
        #expect(normalized("/a%3fb", .base) == "/a%3Fb")
    }

    /// Found by the path-normalizer fuzz target: a `%` that starts no escape paired with what decoding
    /// produced next to it, so the result was not normal (a second pass changed it) and an encoded slash
    /// could appear that no policy saw.
    @Test(arguments: ["/100%", "/%9%66", "/admin%2%46secret", "/%%36%31dmin", "/a%g1", "/a%4"])
    func aPercentThatStartsNoEscapeIsRefused(path: String) {
        for mode in [PathNormalization.base, .mergeSlashes, .decodeAndMergeSlashes] {
            #expect(normalized(path, mode) == nil, "\(path) in \(mode)")
        }
        #expect(normalized(path, .none) == path, "NONE forwards the path as received")
    }

    @Test(arguments: ["//admin", "/admin//", "///admin"])
    func mergeSlashesCatchesRepeatedSlashes(path: String) {
        #expect(normalized(path, .mergeSlashes)?.hasPrefix("/admin") == true)
        #expect(normalized(path, .mergeSlashes)?.contains("//") == false)
    }

    @Test(arguments: [
        ("/admin%2F", "/admin/"), ("%2Fadmin", nil), ("/%2Fadmin", "/admin"), ("/%5Cadmin", "/admin"),
        ("/%5cadmin", "/admin"), ("/public%2F..%2Fadmin", "/admin"),
    ] as [(String, String?)])
    func decodeAndMergeCatchesEncodedSlashes(path: String, expected: String?) {
        // CVE-2021-31920: only DECODE_AND_MERGE_SLASHES catches these; BASE forwards them as they are.
        #expect(normalized(path, .decodeAndMergeSlashes) == expected)
    }

    @Test func nulIsRejectedInEveryMode() throws {
        for mode in PathNormalization.allCases {
            #expect(throws: PathNormalizer.Rejection.nul) { try PathNormalizer.normalize("/a%00b", mode: mode) }
        }
        #expect(throws: PathNormalizer.Rejection.nul) { try PathNormalizer.normalize("/a\u{0}b", mode: .none) }
    }

    @Test func noneLeavesThePathAlone() throws {
        #expect(normalized("/public/../admin", .none) == "/public/../admin")
    }

    /// The no-copy shortcut must never skip a path the full algorithm would change.
    @Test(arguments: PathNormalization.allCases)
    func shortcutAgreesWithTheFullAlgorithm(mode: PathNormalization) {
        let pieces = ["/", "a", ".", "..", "...", ".a", "a.", "//", "%2e", "%41", "\\", "b/"]
        var paths: [String] = []
        for first in pieces { for second in pieces { for third in pieces { paths.append("/" + first + second + third) } } }
        for path in paths where PathNormalizer.isAlreadyNormal(Substring(path).utf8, mode: mode) {
            #expect(normalized(path, mode) == path, "\(path) under \(mode)")
        }
        #expect(PathNormalizer.isAlreadyNormal(Substring("/api/v1/items.json").utf8, mode: .base))
    }
}
