/// Istio's `meshConfig.pathNormalization` (Bootstrap `pathNormalization` here), applied to the path
/// before routing and authorization, so that a DENY on `/admin` holds for every spelling of it
/// (CVE-2019-9901, CVE-2021-31920). Pure: bytes in, bytes out.
public enum PathNormalization: String, Sendable, CaseIterable {
    /// The path exactly as received.
    case none = "NONE"
    /// RFC 3986 dot-segment removal, `\` → `/`, unreserved percent-escapes decoded once, the hex of
    /// the other escapes uppercased (Envoy's `normalize_path`). Istio's default.
    case base = "BASE"
    /// BASE, then runs of `/` merged into one.
    case mergeSlashes = "MERGE_SLASHES"
    /// `%2F` and `%5C` decoded first (either case), then MERGE_SLASHES.
    case decodeAndMergeSlashes = "DECODE_AND_MERGE_SLASHES"
}

public enum PathNormalizer {
    public enum Rejection: Error, Equatable, Sendable {
        /// `%00` or a raw NUL: never a path (CVE-2019-9900).
        case nul
        /// An origin-form path must start with `/`.
        case notAbsolute
        /// A `%` not followed by two hex digits (RFC 3986 §2.1). Left in place it could pair with what
        /// decoding produces next to it (`%9%66` → `%9f`, `%2%46` → `%2F`): a new escape that no policy
        /// saw and that the next hop decodes. Refused, as Envoy's header validator refuses it.
        case invalidEscape
    }

    /// The normalized form of `path` (no query, no fragment). Throws when the path cannot be
    /// normalized safely: the request then gets 400.
    public static func normalize(_ path: Substring, mode: PathNormalization) throws(Rejection) -> String {
        if isAlreadyNormal(path.utf8, mode: mode) { return String(path) }
        let bytes = Array(path.utf8)
        guard !bytes.contains(0), !containsEscapedNul(bytes) else { throw .nul }
        if mode == .none { return String(path) }
        guard bytes.first == UInt8(ascii: "/") else { throw .notAbsolute }
        var decoded = try decodeEscapes(bytes, slashes: mode == .decodeAndMergeSlashes)
        for index in decoded.indices where decoded[index] == UInt8(ascii: "\\") { decoded[index] = UInt8(ascii: "/") }
        var out = removeDotSegments(decoded)
        if mode != .base { out = mergeSlashes(out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when no step could change the path: it starts with `/` and has no `%`, `\\`, NUL, dot
    /// segment or (when slashes merge) `//`. Most real paths; it spares them the copy.
    static func isAlreadyNormal(_ path: Substring.UTF8View, mode: PathNormalization) -> Bool {
        guard path.first == UInt8(ascii: "/") || mode == .none else { return false }
        var previous: UInt8 = 0
        var segmentStart = true
        var dotsInSegment = 0
        for byte in path {
            switch byte {
            case 0, UInt8(ascii: "%"): return false
            case UInt8(ascii: "\\"): if mode != .none { return false }
            case UInt8(ascii: "/"):
                if mode != .none {
                    if segmentStart && dotsInSegment > 0 { return false }
                    if previous == UInt8(ascii: "/") && mode != .base { return false }
                }
                segmentStart = true
                dotsInSegment = 0
            case UInt8(ascii: "."):
                if segmentStart { dotsInSegment += 1 }
                if dotsInSegment > 2 { segmentStart = false }
            default:
                segmentStart = false
            }
            previous = byte
        }
        return mode == .none || !(segmentStart && dotsInSegment > 0)
    }

    /// Decodes unreserved escapes (and, when asked, `%2F` and `%5C`) once; uppercases the hex of the
    /// escapes it keeps. A `%` not followed by two hex digits is refused (see `Rejection.invalidEscape`).
    static func decodeEscapes(_ bytes: [UInt8], slashes: Bool) throws(Rejection) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                throw .invalidEscape
            }
            let value = high << 4 | low
            if value == 0 { throw .nul }
            if isUnreserved(value) || (slashes && (value == UInt8(ascii: "/") || value == UInt8(ascii: "\\"))) {
                out.append(value)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex(high))
                out.append(upperHex(low))
            }
            index += 3
        }
        return out
    }

    /// RFC 3986 §5.2.4, on an absolute path.
    static func removeDotSegments(_ path: [UInt8]) -> [UInt8] {
        var segments: [ArraySlice<UInt8>] = []
        let parts = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        var trailingSlash = false
        for (position, part) in parts.enumerated() {
            let last = position == parts.count - 1
            switch part.count {
            case 1 where part.first == UInt8(ascii: "."):
                trailingSlash = last
            case 2 where part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]):
                if !segments.isEmpty { segments.removeLast() }
                trailingSlash = last
            default:
                segments.append(part)
                trailingSlash = false
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: segment)
        }
        if trailingSlash || out.isEmpty { out.append(UInt8(ascii: "/")) }
        return out
    }

    static func containsEscapedNul(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 3 else { return false }
        return (0...(bytes.count - 3)).contains {
            bytes[$0] == UInt8(ascii: "%") && bytes[$0 + 1] == UInt8(ascii: "0") && bytes[$0 + 2] == UInt8(ascii: "0")
        }
    }

    static func mergeSlashes(_ path: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        for byte in path where !(byte == UInt8(ascii: "/") && out.last == UInt8(ascii: "/")) { out.append(byte) }
        return out
    }

    /// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func upperHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
    }
}
