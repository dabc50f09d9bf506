/// Why a message could not be parsed. Each maps to the local reply Envoy sends for the same fault, and
/// `details` is the `response_code_details` Envoy logs for it.
public enum HTTP1Error: Error, Equatable, Sendable {
    /// Bad syntax or framing: 400 (downstream) or a protocol error (upstream).
    case malformed(details: String)
    /// The head is larger than the limit, or has more fields than allowed: 431.
    case headersTooLarge
    /// A transfer coding other than `chunked`: 501.
    case unsupportedTransferEncoding

    public var details: String {
        switch self {
        case .malformed(let details): details
        case .headersTooLarge: "http1.headers_too_large"
        case .unsupportedTransferEncoding: "http1.invalid_transfer_encoding"
        }
    }

    static let codecError = HTTP1Error.malformed(details: "http1.codec_error")
    static let invalidCharacters = HTTP1Error.malformed(details: "http1.invalid_characters")
}
