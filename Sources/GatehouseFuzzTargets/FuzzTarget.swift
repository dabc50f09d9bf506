/// The parsers and encoders that read hostile bytes, each as a function from one input to the first
/// broken invariant it finds (nil when there is none). A crash inside is a finding too.
///
/// `gatehouse-fuzz` (built only with `GATEHOUSE_FUZZ=1`, see `scripts/fuzz`) hands libFuzzer's inputs to
/// one of these; the unit tests replay every file of `Fuzz/corpus/<target>/` through the same function,
/// so each crash found becomes a regression test by adding its input there.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case http1Request = "http1-request"
    case http1Response = "http1-response"
    case http2Request = "http2-request"
    case headerEncoder = "header-encoder"
    case pathNormalizer = "path-normalizer"
    case config = "config"
    case jwt = "jwt"
    case regex = "regex"
    case dnsReply = "dns-reply"
    case respReply = "resp-reply"

    /// Runs one input; returns the broken invariant, if any.
    public func run(_ data: UnsafeRawBufferPointer) -> String? {
        switch self {
        case .http1Request: HTTP1DecoderTargets.request(data)
        case .http1Response: HTTP1DecoderTargets.response(data)
        case .http2Request: HTTP2MappingTarget.run(data)
        case .headerEncoder: HeaderEncoderTarget.run(data)
        case .pathNormalizer: PathNormalizerTarget.run(data)
        case .config: ConfigTarget.run(data)
        case .jwt: JWTTarget.run(data)
        case .regex: RegexTarget.run(data)
        case .dnsReply: DNSReplyTarget.run(data)
        case .respReply: RESPReplyTarget.run(data)
        }
    }

    /// Builds what a target keeps for all its inputs (keys, subjects) before fuzzing starts, so that
    /// libFuzzer's leak check, which watches each input's allocations, does not take them for a leak.
    public func prepare() {
        switch self {
        case .regex: _ = RegexTarget.subjects
        default: break
        }
    }

    public func run(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// Reads structured values off a fuzz input; running out yields empty values, never a trap.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A length-prefixed piece (one length byte).
    mutating func piece() -> [UInt8] {
        let count = min(Int(byte()), bytes.count - offset)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return offset < bytes.count ? Array(bytes[offset...]) : []
    }
}
