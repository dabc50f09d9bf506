import Foundation
import GatehouseConfig
import GatehouseSnapshot

/// `/ratelimit_counters?rule=RULE&key=KEY`: one rule's counter for one key as this gateway holds it now
/// (read; nothing is taken), for `gatehouse explain --admin`, whose own process has fresh counters.
/// RULE is the rule's counter identity (`CounterIdentity.persistentName`: its name, key attributes and
/// arithmetic), so an `explain` reading a configuration the gateway has not loaded asks for a rule the
/// gateway does not run and is told so, rather than shown another rule's count.
enum AdminRateLimitCounters {
    static func answer(query: String, runtime: ProxyRuntime) -> AdminResponse {
        var rule: String?
        var key: String?
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let value = PercentCoding.decoded(parts[1]) else {
                return AdminResponse(status: 400, body: "ratelimit_counters: \"\(pair)\" is not NAME=VALUE with %-escapes\n")
            }
            switch parts[0] {
            case "rule": rule = value
            case "key": key = value
            default: return AdminResponse(status: 400, body: "ratelimit_counters: unknown parameter \"\(parts[0])\" (rule, key)\n")
            }
        }
        guard let rule, let key else {
            return AdminResponse(status: 400, body: "ratelimit_counters needs rule= (a counter identity) and key=\n")
        }
        if case .redis = runtime.store.snapshot.settings.rateLimitStore {
            return AdminResponse(status: 404, body: "the redis store keeps its counters in Redis, not in the gateway\n")
        }
        guard let (_, table) = runtime.counterStore.table(persistentName: rule) else {
            return AdminResponse(status: 404, body: "the gateway runs no rule \(rule)\n")
        }
        return .json(SnapshotDump.json(["rule": rule, "key": key,
                                        "state": table.storedState(of: key).map { $0 as Any } ?? NSNull()]))
    }
}
