import CPCRE2

/// A regular expression compiled once (PCRE2 with JIT) and matched against the *whole* subject, as Istio's
/// RE2 `StringMatch.regex` does. PCRE2 is backtracking, not linear like RE2, so every match runs under a
/// match limit and a depth limit: a hostile subject makes the match fail, it never stalls an event loop.
///
/// Constructs RE2 does not support (backreferences, lookaround, possessive/atomic groups, recursion) are
/// rejected at compile time so that a config valid here is valid on Istio and vice versa.
public final class CompiledRegex: @unchecked Sendable {
    // `@unchecked Sendable`: the compiled code is immutable after init and PCRE2 documents it as
    // shareable between threads; match data is created per call, never shared.
    public let pattern: String
    private let code: OpaquePointer
    private let matchContext: OpaquePointer?
    private let captureCount: Int

    public static let defaultMatchLimit: UInt32 = 100_000
    public static let defaultDepthLimit: UInt32 = 1_000

    public init(_ pattern: String, matchLimit: UInt32 = CompiledRegex.defaultMatchLimit,
                depthLimit: UInt32 = CompiledRegex.defaultDepthLimit) throws(RegexError) {
        if let unsupported = RE2Compatibility.unsupportedConstruct(in: pattern) {
            throw RegexError(pattern: pattern, offset: unsupported.offset, message: unsupported.message)
        }
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        // Anchoring both ends gives RE2's full-match semantics without rewriting the pattern.
        let options = UInt32(PCRE2_UTF) | UInt32(PCRE2_ANCHORED) | UInt32(PCRE2_ENDANCHORED)
        let compiled = pattern.withCString { ptr in
            ptr.withMemoryRebound(to: UInt8.self, capacity: pattern.utf8.count) {
                pcre2_compile_8($0, pattern.utf8.count, options, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            throw RegexError(pattern: pattern, offset: errorOffset, message: Self.message(for: errorCode))
        }
        code = compiled
        self.pattern = pattern
        // JIT failure is not an error: the interpreter is slower but correct.
        _ = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
        let context = pcre2_match_context_create_8(nil)
        if let context {
            pcre2_set_match_limit_8(context, matchLimit)
            pcre2_set_depth_limit_8(context, depthLimit)
        }
        matchContext = context
        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        captureCount = Int(count)
    }

    deinit {
        if let matchContext { pcre2_match_context_free_8(matchContext) }
        pcre2_code_free_8(code)
    }

    /// True when the whole of `subject` matches. A match that hits a limit counts as no match.
    public func matches(_ subject: some StringProtocol) -> Bool {
        captures(subject) != nil
    }

    /// The capture groups of a whole-subject match (index 0 is the whole match), or nil.
    public func captures(_ subject: some StringProtocol) -> [Substring?]? {
        let string = String(subject)
        guard let matchData = pcre2_match_data_create_from_pattern_8(code, nil) else { return nil }
        defer { pcre2_match_data_free_8(matchData) }
        let utf8 = Array(string.utf8)
        let rc = utf8.withUnsafeBufferPointer { buf in
            pcre2_match_8(code, buf.baseAddress, buf.count, 0, 0, matchData, matchContext)
        }
        guard rc >= 0 else { return nil }
        let ovector = pcre2_get_ovector_pointer_8(matchData)!
        var groups: [Substring?] = []
        groups.reserveCapacity(captureCount + 1)
        for index in 0...captureCount {
            let start = ovector[2 * index], end = ovector[2 * index + 1]
            if index >= Int(rc) || start == Self.unset || end == Self.unset {
                groups.append(nil)
                continue
            }
            let lower = string.utf8.index(string.utf8.startIndex, offsetBy: Int(start))
            let upper = string.utf8.index(string.utf8.startIndex, offsetBy: Int(end))
            groups.append(string[lower..<upper])
        }
        return groups
    }

    /// Replaces a whole-subject match with `template`, where `\1`…`\9` name capture groups (Istio's
    /// `uriRegexRewrite.rewrite` syntax). Returns nil when the pattern does not match.
    public func substitute(in subject: some StringProtocol, template: String) -> String? {
        guard let groups = captures(subject) else { return nil }
        var output = ""
        var iterator = template.makeIterator()
        while let char = iterator.next() {
            guard char == "\\" else { output.append(char); continue }
            guard let next = iterator.next() else { output.append(char); break }
            if let digit = next.wholeNumberValue, digit < groups.count {
                output += groups[digit].map(String.init) ?? ""
            } else {
                output.append(next)
            }
        }
        return output
    }

    private static let unset = ~Int(0)

    private static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = pcre2_get_error_message_8(code, &buffer, buffer.count)
        guard length > 0 else { return "invalid regular expression (error \(code))" }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

public struct RegexError: Error, Equatable, CustomStringConvertible {
    public let pattern: String
    public let offset: Int
    public let message: String
    public var description: String { "invalid regex \"\(pattern)\" at offset \(offset): \(message)" }
}
