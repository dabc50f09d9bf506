import GatehouseHTTP1
import NIOHPACK

extension HTTPHeaderBlock {
    /// Appends the block's fields to an HTTP/2 field list: names lowercased (RFC 9113 §8.2.1), values
    /// trimmed, connection-specific fields left out (§8.2.2), as well as any role in `excluding`. This is
    /// the HTTP/2 side of the encoder's choke point: a field whose name is not a token or whose value
    /// holds a control byte is refused, whatever produced it. Returns how many were refused.
    @discardableResult
    func appendHTTP2Fields(to fields: inout HPACKHeaders, excluding excluded: Set<HeaderRole> = []) -> Int {
        var refused = 0
        forEach { name, value, role in
            switch role {
            case .connection, .hopByHop, .upgrade, .transferEncoding: return
            default: if excluded.contains(role) { return }
            }
            guard FieldSyntax.isValidName(name), FieldSyntax.isValidValue(value) else {
                refused += 1
                return
            }
            fields.add(name: String(decoding: name, as: UTF8.self).lowercased(),
                       value: String(decoding: ASCII.trimmingWhitespace(value), as: UTF8.self))
        }
        return refused
    }

    /// The regular fields of a received HTTP/2 block (trailers), pseudo-headers left out.
    init(regularFieldsOf fields: HPACKHeaders) {
        self.init()
        for (name, value, _) in fields where !name.hasPrefix(":") { add(name, value) }
    }

    /// The block as HTTP/2 trailers (a trailing HEADERS frame).
    var http2Trailers: HPACKHeaders {
        var fields = HPACKHeaders()
        appendHTTP2Fields(to: &fields)
        return fields
    }
}

extension HPACKHeaders {
    /// Whether every regular field of a received block is one an HTTP/1.1 peer could be given as is:
    /// a token name and a trimmed value without control bytes (RFC 9113 §8.2.1 makes the rest
    /// malformed). Upstream responses and trailers are checked with this before they are relayed.
    var isWellFormed: Bool {
        for (name, value, _) in self where !name.hasPrefix(":") {
            guard FieldSyntax.isValidName(name), FieldSyntax.isValidValue(value), FieldSyntax.isTrimmed(value) else {
                return false
            }
        }
        return true
    }
}
