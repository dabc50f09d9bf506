import Foundation

/// A RateLimitPolicy's rules, field by field: names, keys, and one `limit` or `quota` with values that
/// can be enforced. (A rule's `match` is an AuthorizationPolicy rule, parsed with those in
/// GatehouseSnapshot's `PolicyRuleParser`; `selector`/`targetRef` are checked in `SecurityScopeChecks`.)
enum RateLimitPolicyChecks {
    static func check(_ policy: Resource<RateLimitPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let rules = policy.spec.rules ?? []
        if rules.isEmpty { out.append(policy.diagnostic("spec.rules", "a RateLimitPolicy needs at least one rule")) }
        var names: [String: Int] = [:]
        for (index, rule) in rules.enumerated() {
            let path = "spec.rules[\(index)]"
            out += name(rule.name, path, policy, seen: &names, index: index)
            for (position, attribute) in (rule.key ?? []).enumerated() where RateLimitKeyAttribute(attribute) == nil {
                out.append(policy.diagnostic("\(path).key[\(position)]", "unknown attribute \"\(attribute)\""
                    + "\(Suggestion.hint(for: attribute, in: RateLimitKeyAttribute.names)); expected one of "
                    + RateLimitKeyAttribute.names.joined(separator: ", ")))
            }
            switch (rule.limit, rule.quota) {
            case (nil, nil): out.append(policy.diagnostic(path, "set a limit or a quota"))
            case (.some, .some): out.append(policy.diagnostic(path, "limit and quota are alternatives: set one"))
            case (let limit?, nil): out += self.limit(limit, "\(path).limit", policy)
            case (nil, let quota?): out += self.quota(quota, "\(path).quota", policy)
            }
        }
        return out
    }

    private static func name(_ name: String?, _ path: String, _ policy: Resource<RateLimitPolicySpec>,
                             seen: inout [String: Int], index: Int) -> [Diagnostic] {
        guard let name, !name.isEmpty else { return [policy.diagnostic("\(path).name", "missing required field \"name\"")] }
        // Names go into metric labels and log fields as they are.
        let allowed = name.utf8.count <= 63 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
        if !allowed {
            return [policy.diagnostic("\(path).name", "\"\(name)\" must be at most 63 ASCII letters, digits, '-', '_' or '.'")]
        }
        if let first = seen[name] {
            return [policy.diagnostic("\(path).name", "duplicate rule name \"\(name)\" (also spec.rules[\(first)])")]
        }
        seen[name] = index
        return []
    }

    private static func limit(_ limit: RateLimitPolicySpec.Limit, _ path: String,
                              _ policy: Resource<RateLimitPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if let requests = limit.requests {
            if requests <= 0 { out.append(policy.diagnostic("\(path).requests", "must be at least 1")) }
        } else {
            out.append(policy.diagnostic("\(path).requests", "missing required field \"requests\""))
        }
        // A unit that failed to decode was reported there already.
        if limit.unit == nil, !policy.hasDecodeErrors { out.append(policy.diagnostic("\(path).unit", "missing required field \"unit\" (Second, Minute or Hour)")) }
        if let requests = limit.requests, let unit = limit.unit, requests > 0, unit.nanoseconds / requests == 0 {
            out.append(policy.diagnostic("\(path).requests", "more than one request per nanosecond cannot be metered"))
        }
        if let burst = limit.burst, burst <= 0 { out.append(policy.diagnostic("\(path).burst", "must be at least 1")) }
        if let requests = limit.requests, let unit = limit.unit, requests > 0, unit.nanoseconds / requests > 0 {
            let burst = limit.burst ?? requests
            if burst > 0, burst > refillLimit / (unit.nanoseconds / requests) {
                out.append(policy.diagnostic(limit.burst == nil ? "\(path).requests" : "\(path).burst",
                    "a burst of \(burst) takes more than a century to refill at this rate"))
            }
        }
        return out
    }

    /// A hundred years in nanoseconds (as `TokenBucketPolicy.longestRefill`).
    static let refillLimit: Int64 = 100 * 365 * 86_400 * 1_000_000_000

    private static func quota(_ quota: RateLimitPolicySpec.Quota, _ path: String,
                              _ policy: Resource<RateLimitPolicySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if let requests = quota.requests {
            if requests <= 0 || requests >= Int64(UInt32.max) {
                out.append(policy.diagnostic("\(path).requests", "must be between 1 and 4294967294"))
            }
        } else {
            out.append(policy.diagnostic("\(path).requests", "missing required field \"requests\""))
        }
        if quota.period == nil, !policy.hasDecodeErrors { out.append(policy.diagnostic("\(path).period", "missing required field \"period\" (Hour, Day or Month)")) }
        if let zone = quota.timeZone, TimeZone(identifier: zone) == nil {
            out.append(policy.diagnostic("\(path).timeZone", "unknown time zone \"\(zone)\" (an IANA name such as Europe/Paris)"))
        }
        return out
    }
}
