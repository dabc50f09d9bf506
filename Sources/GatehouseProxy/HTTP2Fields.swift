import GatehouseHTTP1
import NIOHPACK

extension HTTPHeaderBlock {
    /// Appends the block's fields to an HTTP/2 field list: names lowercased (RFC 9113 §8.2.1), and
    /// connection-specific fields left out (§8.2.2), as well as any role in `excluding`.
    func appendHTTP2Fields(to fields: inout HPACKHeaders, excluding excluded: Set<HeaderRole> = []) {
        forEach { name, value, role in
            switch role {
            case .connection, .hopByHop, .upgrade, .transferEncoding: return
            default: if excluded.contains(role) { return }
            }
            fields.add(name: String(decoding: name, as: UTF8.self).lowercased(),
                       value: String(decoding: value, as: UTF8.self))
        }
    }

    /// The block as HTTP/2 trailers (a trailing HEADERS frame).
    var http2Trailers: HPACKHeaders {
        var fields = HPACKHeaders()
        appendHTTP2Fields(to: &fields)
        return fields
    }
}
