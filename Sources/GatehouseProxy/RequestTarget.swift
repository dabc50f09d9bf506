import GatehouseRouting
import GatehouseHTTP1

/// The request-target of an HTTP/1.1 request split into what routing needs (RFC 9112 §3.2): origin-form
/// takes its authority from `Host`; absolute-form carries its own, which wins over `Host`.
struct RequestTarget {
    var authority: String
    var path: String
    var query: String?
    var isAbsoluteForm: Bool
    /// Whether the request had a `Host` header (HTTP/1.0 may omit it).
    var hadHost: Bool

    init?(head: RequestHead) {
        self.init(uri: head.target, method: head.method, version: head.version, host: head.headers.first(role: .host),
                  hostCount: head.hostCount)
    }

    /// nil for a target that is not a valid request-target for `method` (400).
    init?(uri: String, method: String, version: HTTP1Version, host: String?, hostCount: Int) {
        if hostCount > 1 { return nil }
        hadHost = host != nil
        var target = Substring(uri)
        isAbsoluteForm = false
        if uri.utf8.first != UInt8(ascii: "/"), let schemeEnd = target.firstRange(of: "://") {
            let scheme = target[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" || scheme == "https" else { return nil }
            let rest = target[schemeEnd.upperBound...]
            let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            authority = String(rest[..<slash])
            target = rest[slash...]
            if target.isEmpty || target.first == "?" { target = "/" + target }
            isAbsoluteForm = true
        } else if target == "*" {
            // asterisk-form is for OPTIONS only (RFC 9112 §3.2.4): no route or policy matches `GET *`.
            guard method == "OPTIONS" else { return nil }
            authority = host ?? ""
        } else {
            guard target.first == "/" else { return nil }
            guard let host else {
                if version == .http1_0 { authority = "" } else { return nil }
                let (path, query) = RouteInput.split(target: String(target))
                self.path = path
                self.query = query
                return
            }
            authority = host
        }
        guard !authority.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "@") })
        else { return nil }
        if !isAbsoluteForm, !uri.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            // The common case: the target is the path; no copy.
            path = uri
            query = nil
            return
        }
        let (path, query) = RouteInput.split(target: String(target))
        self.path = path
        self.query = query
    }
}

extension RequestTarget {
    /// `a.com.` → `a.com`, `a.com.:8080` → `a.com:8080`.
    mutating func stripTrailingHostDot() {
        let utf8 = authority.utf8
        guard utf8.contains(UInt8(ascii: ".")) else { return }
        if utf8.last == UInt8(ascii: ".") {
            authority.removeLast()
            return
        }
        // Bytes, not Characters: every request with a dotted host comes through here.
        guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")), colon > utf8.startIndex else { return }
        let dot = utf8.index(before: colon)
        guard utf8[dot] == UInt8(ascii: "."), utf8[colon...].allSatisfy({ $0 < 0x80 }) else { return }
        authority = String(Substring(utf8[..<dot])) + String(Substring(utf8[colon...]))
    }
}
