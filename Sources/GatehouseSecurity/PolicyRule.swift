/// AuthorizationPolicy actions Gatehouse enforces (CUSTOM is rejected at load).
public enum PolicyAction: String, Sendable {
    case allow = "ALLOW"
    case deny = "DENY"
    case audit = "AUDIT"
}

/// The names a rule is reported under, built once at load so a decision never formats strings.
public final class RuleLabel: Sendable {
    /// `ns/name`, the key of per-policy metrics.
    public let policy: String
    public let action: PolicyAction
    /// nil for a policy that has no rules (an ALLOW with no rules allows nothing).
    public let ruleIndex: Int?
    /// `ns/name[rule N]`, the access log's `authz_policy`.
    public let logName: String
    /// `ns[NS]-policy[NAME]-rule[N]`, Envoy's policy id in `rbac_access_denied_matched_policy[...]`.
    public let envoyID: String

    public init(namespace: String, name: String, action: PolicyAction, ruleIndex: Int?) {
        policy = "\(namespace)/\(name)"
        self.action = action
        self.ruleIndex = ruleIndex
        logName = ruleIndex.map { "\(namespace)/\(name)[rule \($0)]" } ?? "\(namespace)/\(name)"
        envoyID = "ns[\(namespace)]-policy[\(name)]-rule[\(ruleIndex ?? 0)]"
    }
}

/// Why a rule did not match, for `explain`: where its first failing condition is. Plain integers, so
/// the hot path that only needs "matched or not" copies nothing.
public struct RuleMismatch: Sendable, Equatable {
    public enum Section: Sendable { case from, to, when }
    public var section: Section
    /// The entry of `from`/`to` tried last (0 for `when`).
    public var entry: Int
    /// A failing condition within it, as written (tests run cheapest first, so with several failing
    /// it is the cheapest).
    public var condition: Int

    /// `to[0].operation.paths did not match`.
    public func description(in rule: PolicyRule) -> String {
        let entries: [[Condition]]? = switch section {
        case .from: rule.from
        case .to: rule.to
        case .when: [rule.when]
        }
        let conditions = entries.flatMap { entry < $0.count ? $0[entry] : nil }
        guard let conditions, condition < conditions.count else { return "\(section)[\(entry)] is empty" }
        return "\(conditions[condition].field) did not match"
    }
}

/// One rule of one policy: it matches when any `from` entry, any `to` entry and every `when` condition
/// hold (nil lists mean "any"). The engine evaluates its compiled form (`RuleProgram`); this one is
/// what `explain`, TCP filtering and the host index read.
public final class PolicyRule: Sendable {
    public let label: RuleLabel
    public let from: [[Condition]]?
    public let to: [[Condition]]?
    public let when: [Condition]

    public init(label: RuleLabel, from: [[Condition]]?, to: [[Condition]]?, when: [Condition]) {
        self.label = label
        self.from = from
        self.to = to
        self.when = when
    }

    /// The rule as Istio applies it to a TCP connection: a rule with HTTP-only fields is dropped when it
    /// is an ALLOW (it could never match), and loses those fields otherwise, so a DENY on `methods` plus
    /// `ports` denies every connection to the port (nil: dropped).
    public func forTCP() -> PolicyRule? {
        let conditions: [Condition] = Array((from ?? []).joined()) + Array((to ?? []).joined()) + when
        guard conditions.contains(where: { $0.isHTTPOnly }) else { return self }
        if label.action == .allow { return nil }
        return PolicyRule(label: label, from: from?.map { $0.filter { !$0.isHTTPOnly } },
                          to: to?.map { $0.filter { !$0.isHTTPOnly } }, when: when.filter { !$0.isHTTPOnly })
    }

    /// The host names (lowercased, port dropped) that every `to` entry requires, so the engine can skip
    /// the rule for other hosts without testing it. Exact values and `name:*` count; nil when some entry
    /// accepts any host, uses another glob, or tests `notHosts` only.
    var requiredHosts: [String]? {
        indexKeys { test in
            guard case .hosts(let values) = test else { return nil }
            return values.map { value in
                switch value {
                case .exact(let host): String(HostKey.name(of: host))
                case .prefix(let host) where host.hasSuffix(":") && !host.dropLast().contains(":"): String(host.dropLast())
                default: nil
                }
            }
        }
    }

    /// The path directories (literal text up to and including its last `/`) of which every `to` entry
    /// requires one at the start of the path, so the engine can skip the rule for paths outside them
    /// without testing it. nil when some entry accepts any path, tests `notPaths` only, or has a value
    /// that does not begin with a literal `/` (`*.png`, `*`).
    var requiredPathDirectories: [String]? {
        indexKeys { test in
            guard case .paths(let values) = test else { return nil }
            return values.map(\.literalDirectory)
        }
    }

    /// What the engine may index the rule under: for every `to` entry, the keys `keys` gives for the
    /// first positive condition it reads (nil: not that condition), all of them. nil when some entry
    /// has no such condition or some value has no key, as the rule could then match any request.
    private func indexKeys(_ keys: (Condition.Test) -> [String?]?) -> [String]? {
        guard let to, !to.isEmpty else { return nil }
        var all: [String] = []
        for entry in to {
            guard let found = entry.firstNonNil({ $0.negated ? nil : keys($0.test) }) else { return nil }
            for key in found {
                guard let key else { return nil }
                all.append(key)
            }
        }
        return all
    }
}

extension PolicyRule {
    /// For `explain`: when the Host carries a port and the rule's `hosts` would have matched it without
    /// one (or its `notHosts` would have excluded it), the Istio trap at work (ISTIO-SECURITY-2021-008).
    /// nil when the port made no difference.
    public func hostPortNote(host: String, matched: Bool) -> String? {
        let bare = String(HostKey.name(of: host)).lowercased()
        guard bare.utf8.count != host.utf8.count, !host.hasPrefix("[") || host.contains("]:") else { return nil }
        let lowered = host.lowercased()
        for entry in to ?? [] {
            for condition in entry {
                guard case .hosts(let values) = condition.test,
                      !values.contains(where: { $0.matches(lowered) }), values.contains(where: { $0.matches(bare) })
                else { continue }
                if !condition.negated, !matched {
                    return "Host \"\(host)\" carries a port and hosts match it exactly, port included: "
                        + "\"\(bare)\" would have matched (write \"\(bare):*\" to match any port)"
                }
                if condition.negated, matched {
                    return "notHosts lists \"\(bare)\", but Host \"\(host)\" carries a port, so it is not excluded "
                        + "(write \"\(bare):*\" to exclude any port)"
                }
            }
        }
        return nil
    }
}

/// The host-index key of a `Host`: without port (`[v6]:port` keeps its brackets off). A Substring,
/// so looking a request's host up copies nothing.
enum HostKey {
    static func name(of host: String) -> Substring {
        // Offsets from one pass over the bytes: the generic index searches of `UTF8View` showed in
        // the request profile.
        var text = host
        let (start, end) = text.withUTF8 { bytes -> (Int, Int) in
            if bytes.first == UInt8(ascii: "[") {
                return (1, bytes.firstIndex(of: UInt8(ascii: "]")) ?? bytes.count)
            }
            var colon = -1
            for index in bytes.indices where bytes[index] == UInt8(ascii: ":") {
                if colon >= 0 { return (0, bytes.count) }  // a bare IPv6 address: no port
                colon = index
            }
            return (0, colon >= 0 ? colon : bytes.count)
        }
        let utf8 = host.utf8
        return host[utf8.index(utf8.startIndex, offsetBy: start)..<utf8.index(utf8.startIndex, offsetBy: end)]
    }
}

extension Sequence {
    /// The first non-nil result of `transform`, stopping there.
    fileprivate func firstNonNil<Result>(_ transform: (Element) -> Result?) -> Result? {
        for element in self {
            if let result = transform(element) { return result }
        }
        return nil
    }
}
