/// One `paths` value: an Istio glob (`/a`, `/a*`, `*.png`, `*`) or a URI template with `{*}` (exactly one
/// segment) and `{**}` (one or more segments, the last operator: only literal segments may follow). Matched against the normalized path without the
/// query, case-sensitively.
public enum PathMatch: Sendable, Hashable {
    case glob(ValueMatch)
    case template([TemplateSegment])

    public enum TemplateSegment: Sendable, Hashable {
        case literal(String)
        case anyOne
        case anyRest
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case misplacedRest
        case mixedOperator(String)

        public var description: String {
            switch self {
            case .misplacedRest: "{**} must be the last operator of a path template: only literal segments may follow it"
            case .mixedOperator(let segment):
                "segment \"\(segment)\" mixes a template operator with other text; {*} and {**} must be whole segments"
            }
        }
    }

    public init(istio value: String) throws(Problem) {
        guard value.contains("{*}") || value.contains("{**}") else {
            self = .glob(ValueMatch(istio: value))
            return
        }
        let pieces = value.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var segments: [TemplateSegment] = []
        for piece in pieces {
            // Istio: `{**}` is the last operator; literal segments may follow it, operators may not.
            let afterRest = segments.contains(.anyRest)
            switch piece {
            case "{*}", "{**}":
                guard !afterRest else { throw .misplacedRest }
                segments.append(piece == "{*}" ? .anyOne : .anyRest)
            default:
                guard !piece.contains("{"), !piece.contains("}"), !piece.contains("*") else {
                    throw .mixedOperator(String(piece))
                }
                segments.append(.literal(String(piece)))
            }
        }
        self = .template(segments)
    }

    public func matches(_ path: String) -> Bool {
        switch self {
        case .glob(let glob):
            return glob.matches(path)
        case .template(let segments):
            // Walks the path in place (a policy check allocates nothing): the segments before `{**}` from
            // the front, the literal ones after it from the back; `{**}` takes the non-empty middle.
            let slash = UInt8(ascii: "/")
            guard path.utf8.first == slash else { return false }
            var rest = path.utf8.dropFirst()[...]
            let restIndex = segments.firstIndex(of: .anyRest)
            let head = segments[..<(restIndex ?? segments.endIndex)]
            for (offset, segment) in head.enumerated() {
                let end = rest.firstIndex(of: slash) ?? rest.endIndex
                guard Self.matches(segment, rest[..<end]) else { return false }
                if restIndex == nil, offset == head.count - 1 { return end == rest.endIndex }
                guard end != rest.endIndex else { return false }
                rest = rest[rest.index(after: end)...]
            }
            guard let restIndex else { return rest.isEmpty }
            for segment in segments[(restIndex + 1)...].reversed() {
                guard let last = rest.lastIndex(of: slash), Self.matches(segment, rest[rest.index(after: last)...]) else {
                    return false
                }
                rest = rest[..<last]
            }
            return !rest.isEmpty
        }
    }

    private static func matches(_ segment: TemplateSegment, _ piece: Substring.UTF8View) -> Bool {
        switch segment {
        case .anyOne: !piece.isEmpty
        case .literal(let text): piece.elementsEqual(text.utf8)
        case .anyRest: true
        }
    }

    /// The literal text every path this value matches begins with, cut back to its last `/` (`/api/v1/*`
    /// and `/api/v1/users` → `/api/v1/`, `/api/{*}` → `/api/`); nil when a match may begin otherwise.
    var literalDirectory: String? {
        let literal: Substring
        switch self {
        case .glob(.exact(let value)), .glob(.prefix(let value)): literal = value[...]
        case .glob(.suffix), .glob(.present): return nil
        case .template(let segments):
            // The literal segments before the first operator, each followed by its `/` (the operator's
            // segment comes after it: `/a/{*}` requires `/a/`).
            var leading = segments.prefix { if case .literal = $0 { true } else { false } }
            if leading.count == segments.count { leading = leading.dropLast() }
            literal = ("/" + leading.map { if case .literal(let text) = $0 { text + "/" } else { "" } }.joined())[...]
        }
        guard literal.utf8.first == UInt8(ascii: "/"), let last = literal.utf8.lastIndex(of: UInt8(ascii: "/")) else {
            return nil
        }
        return String(literal[...last])
    }

    public var istioSpelling: String {
        switch self {
        case .glob(let glob): glob.istioSpelling
        case .template(let segments):
            "/" + segments.map {
                switch $0 {
                case .literal(let text): text
                case .anyOne: "{*}"
                case .anyRest: "{**}"
                }
            }.joined(separator: "/")
        }
    }
}
