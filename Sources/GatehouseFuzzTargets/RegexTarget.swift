import GatehouseRegex

/// A pattern from config: compiled (or refused as RE2 would refuse it), checked for backtracking
/// hazards, and matched against a few subjects. A match may give up at its limit (that is reported as
/// such); it must never crash or hang.
enum RegexTarget {
    static let subjects = ["", "/", "/api/v1/users", String(repeating: "a", count: 40) + "!", "caf\u{E9}", "\u{0}"]

    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        let pattern = String(decoding: data, as: UTF8.self)
        _ = CompiledRegex.backtrackingHazard(in: pattern)
        guard let regex = try? CompiledRegex(pattern) else { return nil }
        for subject in subjects + [pattern] {
            _ = try? regex.matches(subject)
            _ = try? regex.replacingMatches(in: subject, with: "\\1-x")
        }
        return nil
    }
}
