/// Rules of one action, in evaluation order, with their compiled form and an index that narrows a
/// request to the rules that could match it.
///
/// The index has two levels. A rule whose every `to` entry names exact hosts (or `host:*`) is filed
/// under those host names, the others under "any host". Within each, a rule whose every `to` entry has
/// `paths` that all begin with literal text is filed under that text cut back to its last `/` (its
/// *directory*: `/api/v1/*` → `/api/v1/`, `/api/v1/users` → `/api/v1/`, `/api/{*}/x` → `/api/`), the
/// others under "any path". A request looks up its host and each directory its path begins with, and
/// tests only the rules found there, in order. The index only skips rules that cannot match: every
/// candidate is still tested in full, so it never changes a decision.
struct RuleSet: Sendable {
    let rules: [PolicyRule]
    let program: RuleProgram
    let byHost: [Substring: RuleBucket]
    let anyHost: RuleBucket

    init(_ rules: [PolicyRule]) {
        self.rules = rules
        program = RuleProgram(rules)
        var byHost: [Substring: RuleBucket] = [:]
        var anyHost = RuleBucket()
        for (index, rule) in rules.enumerated() {
            let directories = rule.requiredPathDirectories
            if let hosts = rule.requiredHosts {
                for host in Set(hosts) { byHost[host[...], default: RuleBucket()].file(index, under: directories) }
            } else {
                anyHost.file(index, under: directories)
            }
        }
        self.byHost = byHost
        self.anyHost = anyHost
    }

    /// The first rule, in order, that matches. `host` is the request's `Host`, lowercased; `key` its
    /// name without port. With `observe`, every candidate is tested and reported.
    func firstMatch(_ request: AuthorizationRequest, host: String, key: Substring,
                    observe: ((PolicyRule, RuleMismatch?) -> Void)?) -> PolicyRule? {
        if rules.isEmpty { return nil }
        var candidates = CandidateLists()
        anyHost.collect(path: request.path, into: &candidates)
        if !byHost.isEmpty, let bucket = byHost[key] { bucket.collect(path: request.path, into: &candidates) }
        var first: PolicyRule?
        candidates.forEachInOrder { index in
            let mismatch = program.mismatch(rule: index, request, host: host)
            if let observe {
                observe(rules[index], mismatch)
                if mismatch == nil, first == nil { first = rules[index] }
                return true
            }
            if mismatch == nil {
                first = rules[index]
                return false
            }
            return true
        }
        return first
    }
}

/// The rules filed under one host key (or under "any host"), by the path directory they require.
struct RuleBucket: Sendable {
    private(set) var byDirectory: [Substring: [Int]] = [:]
    private(set) var anyPath: [Int] = []
    /// The longest directory filed, in bytes: a request path's longer directories need no lookup.
    private var longestDirectory = 0

    /// Rule indices arrive in increasing order, so every list stays sorted.
    mutating func file(_ index: Int, under directories: [String]?) {
        guard let directories else {
            anyPath.append(index)
            return
        }
        for directory in Set(directories) {
            byDirectory[directory[...], default: []].append(index)
            longestDirectory = max(longestDirectory, directory.utf8.count)
        }
    }

    func collect(path: String, into candidates: inout CandidateLists) {
        candidates.add(anyPath)
        guard !byDirectory.isEmpty else { return }
        let utf8 = path.utf8
        var end = utf8.startIndex
        var length = 0
        while end != utf8.endIndex, length < longestDirectory {
            let byte = utf8[end]
            end = utf8.index(after: end)
            length += 1
            if byte == UInt8(ascii: "/"), let filed = byDirectory[path[..<end]] { candidates.add(filed) }
        }
    }
}

/// Sorted lists of rule indices, walked as one merged list without duplicates. The usual request has
/// one non-empty list, which is walked without allocating.
struct CandidateLists {
    private var single: [Int] = []
    private var several: [[Int]] = []

    mutating func add(_ list: [Int]) {
        guard !list.isEmpty else { return }
        if single.isEmpty, several.isEmpty {
            single = list
        } else {
            if several.isEmpty { several = [single] }
            several.append(list)
        }
    }

    /// Calls `body` with each index in increasing order until it returns false.
    func forEachInOrder(_ body: (Int) -> Bool) {
        guard !several.isEmpty else {
            for index in single where !body(index) { return }
            return
        }
        var cursors = [Int](repeating: 0, count: several.count)
        while true {
            var next = Int.max
            for (list, cursor) in zip(several, cursors) where cursor < list.count { next = min(next, list[cursor]) }
            guard next != Int.max else { return }
            for position in several.indices where cursors[position] < several[position].count
                && several[position][cursors[position]] == next {
                cursors[position] += 1
            }
            // Every list whose head was `next` moved past it, so an index shared by lists comes once.
            if !body(next) { return }
        }
    }
}
