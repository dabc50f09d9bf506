import Foundation
import GatehouseRegex

/// Cross-resource and semantic checks run after decoding: references, weights, regexes, exclusive fields,
/// and the features this build does not serve or enforce yet (errors: fail closed).
public enum ConfigValidator {
    public static func validate(_ set: ConfigSet) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let catalog = ServiceCatalog(set)
        if set.bootstrap == nil, !set.brokenNames.contains(where: { $0.hasPrefix("Bootstrap ") }) {
            let file = set.files.first ?? "config"
            out.append(Diagnostic(location: .init(file: file, line: 1, column: 1), resource: "Bootstrap",
                                  path: "", message: "no Bootstrap resource found: exactly one is required "
                                      + "(kind: Bootstrap, apiVersion: gatehouse.dev/v1alpha1)"))
        }
        if let bootstrap = set.bootstrap { out += BootstrapChecks.check(bootstrap) }
        out += duplicateNames(set)
        let routed = set.gatewayDestinationHosts(catalog)
        for gateway in set.gateways { out += GatewayChecks.check(gateway) }
        out += GatewayChecks.checkPortConflicts(set.gateways)
        for service in set.virtualServices {
            out += VirtualServiceChecks(catalog: catalog, regexes: set.regexes).check(service)
        }
        for rule in set.destinationRules {
            out += DestinationRuleChecks.check(rule, catalog: catalog,
                                               appliesToGateway: set.destinationRuleApplies(rule, routedHosts: routed, catalog),
                                               hasMeshIdentity: set.bootstrap?.spec.identity != nil)
        }
        var reachedEntries: [Resource<ServiceEntrySpec>] = []
        for entry in set.serviceEntries {
            let reached = entry.spec.hosts.contains { routed.contains(catalog.fqdn($0, namespace: entry.namespace)) }
            if reached { reachedEntries.append(entry) }
            out += ServiceEntryChecks.check(entry, appliesToGateway: reached)
        }
        out += ServiceEntryChecks.selectedWorkloads(set.workloadEntries, by: reachedEntries)
        // The rest of each AuthorizationPolicy and RequestAuthentication is checked where it is compiled
        // (GatehouseSnapshot's parsers), in the same pass that builds what the gateway enforces.
        for policy in set.authorizationPolicies {
            out += SecurityScopeChecks.check(policy, selector: policy.spec.selector, targetRef: policy.spec.targetRef,
                                             targetRefs: policy.spec.targetRefs)
        }
        for authentication in set.requestAuthentications {
            out += SecurityScopeChecks.check(authentication, selector: authentication.spec.selector,
                                             targetRef: authentication.spec.targetRef,
                                             targetRefs: authentication.spec.targetRefs)
        }
        for policy in set.rateLimitPolicies {
            out += SecurityScopeChecks.check(policy, selector: policy.spec.selector, targetRef: policy.spec.targetRef,
                                             targetRefs: policy.spec.targetRefs)
            out += RateLimitPolicyChecks.check(policy)
        }
        for filter in set.envoyFilters { out += EnvoyFilterChecks.check(filter, set: set) }
        // Istio allows no address only on another network (reached through that network's gateway).
        for workload in set.workloadEntries where (workload.spec.address ?? "").isEmpty && workload.spec.network == nil {
            out.append(workload.diagnostic("spec.address", "missing required field \"address\" (it may be omitted only "
                + "with network set)"))
        }
        return out
    }

    static func duplicateNames(_ set: ConfigSet) -> [Diagnostic] {
        var seen: [String: SourceLocation] = [:]
        var out: [Diagnostic] = []
        func visit<S>(_ resource: Resource<S>) {
            let key = resource.label
            if let first = seen[key] {
                out.append(resource.diagnostic("metadata.name", "duplicate name: \(resource.label) is already defined at \(first)"))
            } else {
                seen[key] = resource.positions.location(of: "metadata.name")
            }
        }
        set.gateways.forEach(visit)
        set.virtualServices.forEach(visit)
        set.destinationRules.forEach(visit)
        set.serviceEntries.forEach(visit)
        set.workloadEntries.forEach(visit)
        set.authorizationPolicies.forEach(visit)
        set.requestAuthentications.forEach(visit)
        set.rateLimitPolicies.forEach(visit)
        set.envoyFilters.forEach(visit)
        return out
    }

    static func regexProblem(_ pattern: String, mode: CompiledRegex.Mode = .fullMatch, in regexes: RegexCache) -> String? {
        do {
            _ = try regexes.compile(pattern, mode: mode)
            return nil
        } catch {
            return error.description
        }
    }

    static func stringMatchProblems<S>(_ match: StringMatch?, _ path: String, in resource: Resource<S>,
                                       regexes: RegexCache, allowEmpty: Bool = false) -> [Diagnostic] {
        guard let match else { return [] }
        let set = [match.exact, match.prefix, match.suffix, match.regex].compactMap { $0 }
        if set.count > 1 {
            return [resource.diagnostic(path, "only one of exact, prefix, suffix or regex may be set")]
        }
        if set.isEmpty, !allowEmpty {
            return [resource.diagnostic(path, "one of exact, prefix, suffix or regex is required")]
        }
        if let regex = match.regex, let problem = regexProblem(regex, in: regexes) {
            return [resource.diagnostic("\(path).regex", problem)]
        }
        if let regex = match.regex, let hazard = CompiledRegex.backtrackingHazard(in: regex) {
            return [resource.diagnostic("\(path).regex", hazard, severity: .warning)]
        }
        return []
    }

    /// A field Istio would enforce and this build does not: an error, never a warning it then ignores
    /// (an ignored `tls` sends plaintext, an ignored limit admits what the operator meant to refuse).
    static func notSupported<S>(_ present: Bool, _ path: String, _ resource: Resource<S>, _ what: String) -> [Diagnostic] {
        present ? [resource.diagnostic(path, "\(what) is not supported by this version of Gatehouse yet; "
                                       + "refusing to load a configuration it would not enforce")] : []
    }
}
