import CPCRE2

/// A regular expression compiled once (PCRE2 with JIT) and matched against the *whole* subject, as Istio's
/// RE2 `StringMatch.regex` does. PCRE2 is backtracking, not linear like RE2, so every match runs under a
/// match limit and a depth limit: a hostile subject never stalls an event loop. Hitting a limit is not a
/// "no match" (a route or an inverted match would then be decided by the attacker's input): it throws
/// `RegexLimitExceeded`, and the request is refused.
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

    /// `fullMatch` anchors both ends (StringMatch.regex); `search` finds matches anywhere (used by
    /// `uriRegexRewrite`, which Envoy applies as a global search-and-replace).
    public enum Mode: Sendable { case fullMatch, search }
    public let mode: Mode

    public init(_ pattern: String, mode: Mode = .fullMatch, matchLimit: UInt32 = CompiledRegex.defaultMatchLimit,
                depthLimit: UInt32 = CompiledRegex.defaultDepthLimit) throws(RegexError) {
        if let unsupported = RE2Compatibility.unsupportedConstruct(in: pattern) {
            throw RegexError(pattern: pattern, offset: unsupported.offset, message: unsupported.message)
        }
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        // Anchoring both ends gives RE2's full-match semantics without rewriting the pattern.
        let anchors = mode == .fullMatch ? UInt32(PCRE2_ANCHORED) | UInt32(PCRE2_ENDANCHORED) : 0
        let options = UInt32(PCRE2_UTF) | anchors
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
        self.mode = mode
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

    /// Advice for a pattern that PCRE2 may give up on where RE2 would not (see
    /// `RE2Compatibility.backtrackingHazard`); nil when there is none.
    public static func backtrackingHazard(in pattern: String) -> String? {
        RE2Compatibility.backtrackingHazard(in: pattern).map { "at offset \($0.offset): \($0.message)" }
    }

    deinit {
        if let matchContext { pcre2_match_context_free_8(matchContext) }
        pcre2_code_free_8(code)
    }

    /// True when the whole of `subject` matches (in `search` mode: when it matches anywhere). Throws
    /// when PCRE2 gave up (match, depth or JIT stack limit) before it could tell.
    public func matches(_ subject: some StringProtocol) throws(RegexLimitExceeded) -> Bool {
        let utf8 = Array(subject.utf8)
        guard let matchData = pcre2_match_data_create_from_pattern_8(code, nil) else { throw RegexLimitExceeded(pattern: pattern) }
        defer { pcre2_match_data_free_8(matchData) }
        let rc = utf8.withUnsafeBufferPointer { buf in
            pcre2_match_8(code, buf.baseAddress, buf.count, 0, 0, matchData, matchContext)
        }
        return try Self.outcome(rc, pattern)
    }

    /// PCRE2's result: a match (>= 0), no match, or anything else (a limit hit) as an error.
    private static func outcome(_ rc: Int32, _ pattern: String) throws(RegexLimitExceeded) -> Bool {
        if rc >= 0 { return true }
        if rc == PCRE2_ERROR_NOMATCH { return false }
        throw RegexLimitExceeded(pattern: pattern)
    }

    /// The capture groups of the first match (index 0 is the whole match), or nil.
    public func captures(_ subject: some StringProtocol) throws(RegexLimitExceeded) -> [Substring?]? {
        let string = String(subject)
        let utf8 = Array(string.utf8)
        guard let ranges = try matchRanges(in: utf8, from: 0) else { return nil }
        return ranges.map { range in
            range.map { string[string.utf8.index(string.utf8.startIndex, offsetBy: $0.lowerBound)
                              ..< string.utf8.index(string.utf8.startIndex, offsetBy: $0.upperBound)] }
        }
    }

    /// Replaces every non-overlapping match with `template`, where `\0`…`\9` name capture groups (Envoy's
    /// `regex_rewrite`, i.e. RE2::GlobalReplace). Returns the subject unchanged when nothing matches.
    public func replacingMatches(in subject: String, with template: String) throws(RegexLimitExceeded) -> String {
        let utf8 = Array(subject.utf8)
        var output: [UInt8] = []
        var copied = 0
        var offset = 0
        while offset <= utf8.count, let ranges = try matchRanges(in: utf8, from: offset), let whole = ranges[0] {
            output += utf8[copied..<whole.lowerBound]
            output += expand(template, ranges: ranges, in: utf8)
            copied = whole.upperBound
            // An empty match must still move forward, or the loop would never end.
            offset = whole.isEmpty ? whole.upperBound + 1 : whole.upperBound
            if mode == .fullMatch { break }
        }
        guard copied > 0 || !output.isEmpty else { return subject }
        if copied < utf8.count { output += utf8[copied...] }
        return String(decoding: output, as: UTF8.self)
    }

    private func expand(_ template: String, ranges: [Range<Int>?], in utf8: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var iterator = template.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "\\") else { output.append(byte); continue }
            guard let next = iterator.next() else { output.append(byte); break }
            if next >= UInt8(ascii: "0"), next <= UInt8(ascii: "9") {
                let index = Int(next - UInt8(ascii: "0"))
                if index < ranges.count, let range = ranges[index] { output += utf8[range] }
            } else {
                output.append(next)
            }
        }
        return output
    }

    /// Byte ranges of the whole match and each group for the first match at or after `offset`.
    private func matchRanges(in utf8: [UInt8], from offset: Int) throws(RegexLimitExceeded) -> [Range<Int>?]? {
        guard let matchData = pcre2_match_data_create_from_pattern_8(code, nil) else { throw RegexLimitExceeded(pattern: pattern) }
        defer { pcre2_match_data_free_8(matchData) }
        let rc = utf8.withUnsafeBufferPointer { buf in
            pcre2_match_8(code, buf.baseAddress, buf.count, offset, 0, matchData, matchContext)
        }
        guard try Self.outcome(rc, pattern), rc > 0 else { return nil }
        let ovector = pcre2_get_ovector_pointer_8(matchData)!
        return (0...captureCount).map { index in
            let start = ovector[2 * index], end = ovector[2 * index + 1]
            if index >= Int(rc) || start == Self.unset || end == Self.unset { return nil }
            return start..<end
        }
    }

    private static let unset = ~Int(0)

    private static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = pcre2_get_error_message_8(code, &buffer, buffer.count)
        guard length > 0 else { return "invalid regular expression (error \(code))" }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

/// PCRE2 stopped before it could decide (its match, depth or JIT stack limit): the subject is one RE2
/// would have run in linear time, and the caller must refuse it rather than treat it as no match.
public struct RegexLimitExceeded: Error, Equatable, Sendable, CustomStringConvertible {
    public let pattern: String
    public var description: String { "regex \"\(pattern)\" hit its match limit" }
}

public struct RegexError: Error, Equatable, CustomStringConvertible {
    public let pattern: String
    public let offset: Int
    public let message: String
    public var description: String { "invalid regex \"\(pattern)\" at offset \(offset): \(message)" }
}
