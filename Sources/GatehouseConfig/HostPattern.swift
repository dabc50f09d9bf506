/// Istio's host patterns (DestinationRule and ServiceEntry `hosts`): a name covers itself, `*` covers
/// everything, and `*.suffix` covers any name with at least one label before `.suffix` (a pattern host,
/// as a `resolution: NONE` ServiceEntry has, is covered by an equal or wider pattern).
public enum HostPattern {
    public static func covers(_ pattern: String, _ host: some StringProtocol) -> Bool {
        if pattern == "*" || host == pattern { return true }
        guard pattern.hasPrefix("*.") else { return false }
        return host.hasSuffix(pattern.dropFirst()) && host.count > pattern.count - 1
    }
}
