/// One `paths` value: an Istio glob (`/a`, `/a*`, `*.png`, `*`) or a URI template with `{*}` (exactly one
/// segment) and `{**}` (the rest of the path, last only). Matched against the normalized path without the
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
            case .misplacedRest: "{**} may only be the last segment of a path template"
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
        for (index, piece) in pieces.enumerated() {
            switch piece {
            case "{*}": segments.append(.anyOne)
            case "{**}":
                guard index == pieces.count - 1 else { throw .misplacedRest }
                segments.append(.anyRest)
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
            var rest = path.utf8.dropFirst()[...]
            guard path.utf8.first == UInt8(ascii: "/") else { return false }
            for (index, segment) in segments.enumerated() {
                let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
                let piece = rest[rest.startIndex..<end]
                let last = index == segments.count - 1
                switch segment {
                case .anyRest:
                    return !rest.isEmpty
                case .anyOne:
                    if piece.isEmpty { return false }
                case .literal(let text):
                    if !piece.elementsEqual(text.utf8) { return false }
                }
                if last { return end == rest.endIndex }
                guard end != rest.endIndex else { return false }
                rest = rest[rest.index(after: end)...]
            }
            return rest.isEmpty
        }
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
