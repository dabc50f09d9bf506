import GatehouseRegex

/// Istio's `StringMatch`, compiled. Exact and prefix are case-sensitive unless the route asks otherwise; a
/// regex must match the whole string; an empty match means "present".
public enum StringMatcher: Sendable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case regex(CompiledRegex)
    case present

    /// Throws when a regex hit its match limit: the caller refuses the request (fail closed).
    public func matches(_ value: some StringProtocol, ignoringCase: Bool = false) throws(RegexLimitExceeded) -> Bool {
        switch self {
        case .exact(let expected):
            return ignoringCase ? value.lowercased() == expected.lowercased() : value == expected
        case .prefix(let expected):
            return ignoringCase ? value.lowercased().hasPrefix(expected.lowercased()) : value.hasPrefix(expected)
        case .suffix(let expected):
            return ignoringCase ? value.lowercased().hasSuffix(expected.lowercased()) : value.hasSuffix(expected)
        case .regex(let regex):
            return try regex.matches(value)
        case .present:
            return true
        }
    }
}
