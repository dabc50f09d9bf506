/// Rules in AuthorizationPolicy form, each tested on its own: for the engines that need to know which of
/// several rules match a request rather than which one decides it (a RateLimitPolicy rule's `match`).
/// The same compiled form (`RuleProgram`) the authorization engine runs, so a condition means the same
/// thing in both.
public struct RequestMatcher: Sendable {
    public let rules: [PolicyRule]
    let program: RuleProgram

    public init(_ rules: [PolicyRule]) {
        self.rules = rules
        program = RuleProgram(rules)
    }

    /// The request's `Host` as `mismatch` takes it.
    public static func lowercasedHost(of request: AuthorizationRequest) -> String { ASCIICase.lowercased(request.host) }

    /// nil when rule `index` matches `request`; otherwise where its first failing test is. `host` is the
    /// request's `Host`, lowercased (`lowercasedHost(of:)`), once for all rules.
    public func mismatch(rule index: Int, _ request: AuthorizationRequest, host: String) -> RuleMismatch? {
        program.mismatch(rule: index, request, host: host)
    }
}
