import GatehouseSnapshot

/// What a config holds that is read but not applied, skipped, or resolved through DNS: printed by
/// `validate` under its summary and logged at start-up and on each reload, so nothing is dropped silently.
enum ConfigNotices {
    static func lines(_ snapshot: Snapshot) -> [String] {
        var out = snapshot.notApplicable.map { "not applicable to a gateway: \($0.label) (\($0.location)): \($0.reason)" }
        if !snapshot.skippedKubernetes.isEmpty {
            let kinds = snapshot.skippedKubernetes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            out.append("skipped \(snapshot.skippedKubernetes.values.reduce(0, +)) Kubernetes resource(s) that do not "
                + "configure a gateway: " + kinds.joined(separator: ", "))
        }
        let services = snapshot.clusters.values.filter { $0.discovery == .kubernetesService }.map(\.name).sorted()
        if !services.isEmpty {
            let resolvers = snapshot.settings.dnsResolvers.isEmpty ? "the nameservers of /etc/resolv.conf"
                : snapshot.settings.dnsResolvers.joined(separator: ", ")
            out.append("resolved through DNS as Kubernetes services (via \(resolvers)): " + services.joined(separator: ", "))
        }
        return out
    }
}
