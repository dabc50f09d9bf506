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
            guard path.utf8.first == UInt8(ascii: "/") else { return false }
            let pieces = path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            func matches(_ segment: TemplateSegment, _ piece: Substring.UTF8View.SubSequence) -> Bool {
                switch segment {
                case .anyOne: !piece.isEmpty
                case .literal(let text): piece.elementsEqual(text.utf8)
                case .anyRest: true
                }
            }
            guard let rest = segments.firstIndex(of: .anyRest) else {
                return pieces.count == segments.count && zip(segments, pieces).allSatisfy(matches)
            }
            // `{**}` takes the (non-empty) middle: what the segments before and after it leave.
            let tail = segments.count - rest - 1
            guard pieces.count >= rest + tail + 1 else { return false }
            let middle = pieces[rest..<(pieces.count - tail)]
            guard middle.count > 1 || !(middle.first?.isEmpty ?? true) else { return false }
            return zip(segments[..<rest], pieces[..<rest]).allSatisfy(matches)
                && zip(segments[(rest + 1)...], pieces[(pieces.count - tail)...]).allSatisfy(matches)
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
