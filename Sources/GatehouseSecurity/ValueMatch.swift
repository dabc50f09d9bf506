#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Byte-wise, as Envoy's string matchers compare: two spellings of the same Unicode text are not
    /// the same value (and comparing bytes is cheaper than comparing Characters).
    public func matches(_ candidate: Substring) -> Bool {
        let found = candidate.utf8.withContiguousStorageIfAvailable { matches(bytes: UnsafeRawBufferPointer($0)) }
        if let found { return found }
        return Array(candidate.utf8).withUnsafeBytes { matches(bytes: $0) }
    }

    public func matches(_ candidate: String) -> Bool { matches(candidate[...]) }

    /// The same test on raw UTF-8 bytes (a header value in the data plane's buffer).
    public func matches(bytes candidate: UnsafeRawBufferPointer) -> Bool {
        switch self {
        case .present: return !candidate.isEmpty
        case .exact(let value), .prefix(let value), .suffix(let value):
            var value = value
            return value.withUTF8 { wanted in
                guard candidate.count >= wanted.count else { return false }
                if case .exact = self, candidate.count != wanted.count { return false }
                guard !wanted.isEmpty else { return true }
                let offset = if case .suffix = self { candidate.count - wanted.count } else { 0 }
                return memcmp(candidate.baseAddress! + offset, wanted.baseAddress!, wanted.count) == 0
            }
        }
    }

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
