/// `selector`/`targetRef`/`targetRefs`, shared by AuthorizationPolicy and RequestAuthentication.
enum SecurityScopeChecks {
    static func check<S>(_ resource: Resource<S>, selector: WorkloadSelector?, targetRef: PolicyTargetReference?,
                         targetRefs: [PolicyTargetReference]?) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let setCount = [selector != nil, targetRef != nil, targetRefs != nil].filter { $0 }.count
        if setCount > 1 {
            out.append(resource.diagnostic("spec", "only one of selector, targetRef or targetRefs may be set"))
        }
        var refs = targetRefs.map { $0.enumerated().map { ("spec.targetRefs[\($0.offset)]", $0.element) } } ?? []
        if let targetRef { refs.append(("spec.targetRef", targetRef)) }
        for (path, ref) in refs {
            if let namespace = ref.namespace, namespace != resource.namespace {
                out.append(resource.diagnostic("\(path).namespace",
                    "a policy can only target resources in its own namespace \"\(resource.namespace)\""))
            }
            if ref.kind != "Gateway" || (ref.group ?? "gateway.networking.k8s.io") != "gateway.networking.k8s.io" {
                out.append(resource.diagnostic("\(path).kind",
                    "targetRef \(ref.kind) applies to waypoints and services, not to this gateway; it is ignored here "
                        + "(target kind: Gateway, group: gateway.networking.k8s.io, with the Bootstrap's name)",
                    severity: .warning))
            }
        }
        return out
    }
}
