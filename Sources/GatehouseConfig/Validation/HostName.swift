/// Checks on DNS-style host names as Istio writes them: exact names, or a `*` in the left-most label only.
enum HostName {
    static func problem(_ host: String, allowWildcard: Bool = true) -> String? {
        if host == "*" { return allowWildcard ? nil : "\"*\" is not allowed here" }
        var name = Substring(host)
        if name.hasPrefix("*.") {
            guard allowWildcard else { return "wildcard hosts are not allowed here" }
            name = name.dropFirst(2)
        }
        if name.contains("*") { return "a wildcard is only allowed as the whole left-most label (\"*.example.com\")" }
        if name.isEmpty || name.count > 253 { return "invalid host name \"\(host)\"" }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63,
                  label.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
                  label.first != "-", label.last != "-" else {
                return "invalid host name \"\(host)\""
            }
        }
        return nil
    }

    static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && (Int(part) ?? 256) <= 255
        }
    }

    static func isIPv6(_ text: String) -> Bool {
        text.contains(":") && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
            && text.split(separator: ":", omittingEmptySubsequences: false).count <= 8
    }
}
