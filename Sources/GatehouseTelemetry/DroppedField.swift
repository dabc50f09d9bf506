/// Why the gateway dropped a header field instead of writing it toward a peer. Each is counted in
/// `gatehouse_header_fields_dropped_total{reason="..."}`; the request itself goes on without the field.
public enum DroppedField: String, CaseIterable, Sendable {
    /// A JWT claim copied by `outputClaimToHeaders` whose value holds a control byte (CR, LF, NUL, …):
    /// the claim header is not written, so a token cannot add headers or a second request.
    case invalidClaimValue = "invalid_claim_value"
    /// A field the encoder refused: a name that is not a token, or a value with a control byte, from
    /// any source (config, an upstream, a code path that missed its own check).
    case invalidField = "invalid_field"
    /// A trailer field RFC 9110 §6.5.1 prohibits in trailers (Content-Length, Host, Authorization, …).
    case prohibitedTrailer = "prohibited_trailer"
}
