/// Where an endpoint (or the gateway) runs: Istio's `region/zone/subzone`.
public struct Locality: Sendable, Hashable, CustomStringConvertible {
    public var region: String
    public var zone: String
    public var subzone: String

    public init(region: String = "", zone: String = "", subzone: String = "") {
        self.region = region
        self.zone = zone
        self.subzone = subzone
    }

    /// `region/zone/subzone`, each part optional from the right.
    public init(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        self.init(region: parts.count > 0 ? parts[0] : "", zone: parts.count > 1 ? parts[1] : "",
                  subzone: parts.count > 2 ? parts[2] : "")
    }

    public var description: String { [region, zone, subzone].joined(separator: "/") }

    /// Istio's `LocalityMatch`: a pattern of up to three `/`-separated parts, each `*` or the exact
    /// part; parts the pattern leaves out match anything.
    public func matches(_ pattern: String) -> Bool {
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() where part != "*" {
            let mine = index == 0 ? region : index == 1 ? zone : index == 2 ? subzone : ""
            guard index < 3, part == mine else { return false }
        }
        return true
    }
}

/// How a cluster's endpoints are used by locality (DestinationRule `localityLbSetting`, as Istio hands it
/// to Envoy): failover by priority, or a fixed distribution over localities.
public enum LocalityPlan: Sendable, Equatable {
    /// Endpoint indexes per priority, 0 first: traffic stays in the first priority until its endpoints
    /// are ejected, then spills over to the next (Envoy's priority load, overprovisioning 1.4).
    case failover([[Int]])
    /// Locality groups with their weights (Envoy's locality-weighted load balancing); endpoints in no
    /// group take no traffic.
    case distribute([WeightedGroup])

    public struct WeightedGroup: Sendable, Equatable {
        public var endpoints: [Int]
        public var weight: Int

        public init(endpoints: [Int], weight: Int) {
            self.endpoints = endpoints
            self.weight = weight
        }
    }

    /// Envoy's overprovisioning factor, in percent: a priority with at least 1/1.4 of its endpoints
    /// healthy still takes all its load.
    public static let overprovisioningPercent = 140

    /// Istio's `LbPriority`: 0 when region, zone and subzone match the gateway's, 1 for region and zone,
    /// 2 for the region only, 3 otherwise.
    public static func priority(of endpoint: Locality, from gateway: Locality) -> Int {
        guard gateway.region == endpoint.region else { return 3 }
        guard gateway.zone == endpoint.zone else { return 2 }
        return gateway.subzone == endpoint.subzone ? 0 : 1
    }

    /// Istio's `applyLocalityFailover`: priorities by locality, where another region is priority 3 if a
    /// `failover` entry from the gateway's region names it and 4 otherwise; empty priorities are dropped.
    /// nil when every endpoint lands in one priority (nothing to fail over to).
    public static func failover(endpoints: [Locality], gateway: Locality, failover: [(from: String, to: String)]) -> LocalityPlan? {
        var byPriority: [Int: [Int]] = [:]
        for (index, locality) in endpoints.enumerated() {
            var priority = Self.priority(of: locality, from: gateway)
            if priority == 3, let rule = failover.first(where: { $0.from == gateway.region }), locality.region != rule.to {
                priority = 4
            }
            byPriority[priority, default: []].append(index)
        }
        guard byPriority.count > 1 else { return nil }
        return .failover(byPriority.keys.sorted().map { byPriority[$0]! })
    }

    /// Istio's `applyPriorityFailover` (DestinationRule `failoverPriority`): with N labels, an endpoint
    /// whose first k labels match and whose next does not has priority N−k (all N: priority 0). A plain
    /// key matches when the endpoint's value equals the gateway's (both absent counts as equal); `key=value`
    /// matches when the endpoint's value is that value. Priorities are then numbered without gaps; nil when
    /// every endpoint lands in one, or when the gateway has no labels (Istio then leaves priorities alone).
    public static func failoverPriority(endpoints: [[String: String]], gateway: [String: String],
                                        labels: [String]) -> LocalityPlan? {
        guard !gateway.isEmpty else { return nil }
        let rules = labels.map { label -> (key: Substring, value: Substring?) in
            guard let equals = label.firstIndex(of: "=") else { return (label[...], nil) }
            return (label[..<equals], label[label.index(after: equals)...])
        }
        var byPriority: [Int: [Int]] = [:]
        for (index, endpointLabels) in endpoints.enumerated() {
            var priority = 0
            for (position, rule) in rules.enumerated() {
                let key = String(rule.key)
                let matched = rule.value.map { endpointLabels[key] == String($0) } ?? (endpointLabels[key] == gateway[key])
                if !matched {
                    priority = rules.count - position
                    break
                }
            }
            byPriority[priority, default: []].append(index)
        }
        guard byPriority.count > 1 else { return nil }
        return .failover(byPriority.keys.sorted().map { byPriority[$0]! })
    }

    /// Istio's topology labels for a locality (`AugmentLabels`), which `failoverPriority` may name.
    public static func topologyLabels(_ locality: Locality) -> [String: String] {
        var labels: [String: String] = [:]
        if !locality.region.isEmpty { labels["topology.kubernetes.io/region"] = locality.region }
        if !locality.zone.isEmpty { labels["topology.kubernetes.io/zone"] = locality.zone }
        if !locality.subzone.isEmpty { labels["topology.istio.io/subzone"] = locality.subzone }
        return labels
    }

    /// Istio's `applyLocalityWeights`: the first `distribute` entry whose `from` matches the gateway's
    /// locality splits the traffic over the localities its `to` names (a pattern matching several
    /// localities splits its weight among them by endpoint count); nil when no entry applies.
    public static func distribute(endpoints: [Locality], gateway: Locality,
                                  rules: [(from: String, to: [(locality: String, weight: Int)])]) -> LocalityPlan? {
        guard let rule = rules.first(where: { gateway.matches($0.from) }) else { return nil }
        var unassigned = Set(endpoints.indices)
        var groups: [WeightedGroup] = []
        for (pattern, weight) in rule.to {
            // The endpoints of each locality the pattern matches, among those no earlier entry took.
            var localities: [Locality: [Int]] = [:]
            for index in endpoints.indices where unassigned.contains(index) && endpoints[index].matches(pattern) {
                localities[endpoints[index], default: []].append(index)
                unassigned.remove(index)
            }
            let total = localities.values.reduce(0) { $0 + $1.count }
            for (_, members) in localities.sorted(by: { $0.key.description < $1.key.description }) {
                // Each locality's share of the pattern's weight, by its endpoints, rounded up as Istio does.
                let share = (members.count * weight + total - 1) / total
                if share > 0 { groups.append(WeightedGroup(endpoints: members, weight: share)) }
            }
        }
        return groups.isEmpty ? nil : .distribute(groups)
    }

    /// Envoy's load per priority, in percent, from how many endpoints of each are healthy: each
    /// priority's health is 1.4 × its healthy share, capped at 100; the load fills priorities in order by
    /// health, normalised when the healths add up to less than 100, any rounding left going to the first
    /// priority with load. All zeros when no endpoint is healthy.
    public static func priorityLoad(healthy: [Int], total: [Int]) -> [Int] {
        let health = zip(healthy, total).map { healthy, total in
            total == 0 ? 0 : min(100, overprovisioningPercent * healthy / total)
        }
        let available = min(100, health.reduce(0, +))
        guard available > 0 else { return Array(repeating: 0, count: health.count) }
        var remaining = 100
        var load: [Int] = []
        for value in health {
            let share = min(remaining, value * 100 / available)
            load.append(share)
            remaining -= share
        }
        if remaining > 0, let first = load.firstIndex(where: { $0 > 0 }) { load[first] += remaining }
        return load
    }

    /// An endpoint's priority (Envoy's, as `/clusters` shows it): its failover priority, 0 under `distribute`.
    public func priority(ofEndpoint index: Int) -> Int {
        guard case .failover(let priorities) = self else { return 0 }
        return priorities.firstIndex { $0.contains(index) } ?? 0
    }

    /// The endpoints a request may go to, by `draw` (any random value), given which are ejected: those
    /// of the priority (or locality group) drawn by load. nil when none is healthy anywhere (the caller
    /// then decides as without localities).
    /// `avoiding`: failover priorities a retry should pass over (Envoy's `previous_priorities`, for
    /// `retryRemoteLocalities`), unless that leaves none.
    public func eligible(draw: UInt64, isEjected: (Int) -> Bool, avoiding: [Int] = []) -> [Int]? {
        switch self {
        case .failover(let priorities):
            let total = priorities.map(\.count)
            var load = Self.priorityLoad(healthy: priorities.enumerated().map { index, members in
                avoiding.contains(index) ? 0 : members.count { !isEjected($0) }
            }, total: total)
            if !avoiding.isEmpty, !load.contains(where: { $0 > 0 }) {
                load = Self.priorityLoad(healthy: priorities.map { $0.count { !isEjected($0) } }, total: total)
            }
            guard load.contains(where: { $0 > 0 }) else { return nil }
            var point = Int(draw % 100)
            for (index, share) in load.enumerated() {
                if point < share { return priorities[index] }
                point -= share
            }
            return priorities[load.firstIndex { $0 > 0 }!]
        case .distribute(let groups):
            // A locality's weight counts as much as its endpoints are available (Envoy's effective weight).
            let weights = groups.map { group in
                group.weight * min(100, Self.overprovisioningPercent * group.endpoints.count { !isEjected($0) } / group.endpoints.count)
            }
            let total = weights.reduce(0, +)
            guard total > 0 else { return nil }
            var point = Int(draw % UInt64(total))
            for (index, weight) in weights.enumerated() {
                if point < weight { return groups[index].endpoints }
                point -= weight
            }
            return groups[weights.firstIndex { $0 > 0 }!].endpoints
        }
    }
}
