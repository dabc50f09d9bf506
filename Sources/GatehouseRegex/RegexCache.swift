import Synchronization

/// The regexes of one configuration load, each compiled once: validation compiles a pattern to report
/// its error and the snapshot compiler uses that very compiled regex (PCRE2 compile and JIT are the
/// costly part of loading a regex-heavy config). Shared by the copies of the config set it belongs to.
public final class RegexCache: Sendable {
    private struct Key: Hashable {
        var pattern: String
        var search: Bool
    }

    private let compiled = Mutex<[Key: Result<CompiledRegex, RegexError>]>([:])

    public init() {}

    public func compile(_ pattern: String, mode: CompiledRegex.Mode = .fullMatch) throws(RegexError) -> CompiledRegex {
        let key = Key(pattern: pattern, search: mode == .search)
        if let done = compiled.withLock({ $0[key] }) { return try done.get() }
        let result: Result<CompiledRegex, RegexError>
        do {
            result = .success(try CompiledRegex(pattern, mode: mode))
        } catch {
            result = .failure(error)
        }
        compiled.withLock { $0[key] = result }
        return try result.get()
    }

    /// How many distinct patterns were compiled (tests).
    public var count: Int { compiled.withLock { $0.count } }
}
