/// One value of an AuthorizationPolicy string field, in Istio's glob forms: `*` (present, non-empty),
/// `*suffix`, `prefix*`, or an exact string. A `*` anywhere else is literal (istio/istio#46910).
public enum ValueMatch: Sendable, Hashable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case present

    public init(istio value: String) {
        if value == "*" {
            self = .present
        } else if value.hasPrefix("*") {
            self = .suffix(String(value.dropFirst()))
        } else if value.hasSuffix("*") {
            self = .prefix(String(value.dropLast()))
        } else {
            self = .exact(value)
        }
    }

    public func matches(_ candidate: Substring) -> Bool {
        switch self {
        case .exact(let value): candidate == value
        case .prefix(let value): candidate.hasPrefix(value)
        case .suffix(let value): candidate.hasSuffix(value)
        case .present: !candidate.isEmpty
        }
    }

    public func matches(_ candidate: String) -> Bool { matches(candidate[...]) }

    /// For `hosts`: Istio compares them ignoring ASCII case. `self` was lowercased at compile time.
    public func matchesIgnoringCase(_ candidate: String) -> Bool {
        matches(ASCIICase.lowercased(candidate)[...])
    }

    public var lowercased: ValueMatch {
        switch self {
        case .exact(let value): .exact(ASCIICase.lowercased(value))
        case .prefix(let value): .prefix(ASCIICase.lowercased(value))
        case .suffix(let value): .suffix(ASCIICase.lowercased(value))
        case .present: .present
        }
    }

    /// How Istio would read this value back, for `explain`.
    public var istioSpelling: String {
        switch self {
        case .exact(let value): value
        case .prefix(let value): value + "*"
        case .suffix(let value): "*" + value
        case .present: "*"
        }
    }
}

enum ASCIICase {
    static func lowercased(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return text }
        return String(decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 },
                      as: UTF8.self)
    }
}
