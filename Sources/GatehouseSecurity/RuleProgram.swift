#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rules of one action, compiled into flat buffers of plain values: every glob's bytes live in one
/// arena, every test is a small struct of integers. Walking a request through them touches no reference
/// count and copies no string, where walking the `Condition` objects cost a retain/release pair per
/// array, enum payload and string on the way (the largest cost of a policy check in the profile).
///
/// Within a `from`/`to` entry and within `when`, tests run cheapest first (a port before a header scan):
/// they are ANDed and pure, so the order changes only which failing test `explain` names.
/// Rare forms (path templates, `source.namespace`'s service-account pairs) keep their `Condition` and
/// run through it.
final class RuleProgram: @unchecked Sendable {  // immutable after init; the buffers are freed in deinit
    enum Kind: UInt8 {
        case ports, methods, serverName, sourceIP, remoteIP, destinationIP
        case hosts, paths, requestPrincipals, presenter
        case principals, namespaces, audiences, claim, header
        /// Evaluated through `Condition.matchesAny`.
        case other
    }

    enum Mode: UInt8 { case exact, prefix, suffix, present }

    /// One glob: its bytes are `arena[start..<start+count]`.
    struct Value {
        var mode: Mode
        var start: Int32
        var count: Int32
    }

    struct Test {
        var kind: Kind
        var negated: Bool
        /// Its values: `values`, `blocks` or `ports`, per kind.
        var first: Int32
        var count: Int32
        /// The header name, claim path or `Condition` it reads (`names`, `claimPaths`, `others`).
        var side: Int32
        /// Where the condition sits in its entry as written, for `RuleMismatch`.
        var position: Int32
    }

    /// Tests that must all hold.
    struct Group {
        var first: Int32
        var count: Int32
    }

    struct Rule {
        /// `groups[first..<first+count]`; count -1 when the rule has no `from` (or `to`): any source.
        var fromFirst: Int32, fromCount: Int32
        var toFirst: Int32, toCount: Int32
        var when: Group
    }

    private let arena: UnsafeMutableBufferPointer<UInt8>
    private let values: UnsafeMutableBufferPointer<Value>
    private let blocks: UnsafeMutableBufferPointer<IPBlock>
    private let ports: UnsafeMutableBufferPointer<Int>
    private let tests: UnsafeMutableBufferPointer<Test>
    private let groups: UnsafeMutableBufferPointer<Group>
    private let rules: UnsafeMutableBufferPointer<Rule>
    private let names: [String]
    private let claimPaths: [[String]]
    private let others: [Condition]

    init(_ source: [PolicyRule]) {
        var builder = Builder()
        let compiled = source.map { builder.add($0) }
        arena = .copy(builder.arena)
        values = .copy(builder.values)
        blocks = .copy(builder.blocks)
        ports = .copy(builder.ports)
        tests = .copy(builder.tests)
        groups = .copy(builder.groups)
        rules = .copy(compiled)
        names = builder.names
        claimPaths = builder.claimPaths
        others = builder.others
    }

    deinit {
        arena.deallocate()
        values.deallocate()
        blocks.deallocate()
        ports.deallocate()
        tests.deallocate()
        groups.deallocate()
        rules.deallocate()
    }

    // MARK: evaluation

    /// nil when rule `index` matches; otherwise where its first failing test is. `host` is the request's
    /// `Host`, lowercased once for all rules.
    func mismatch(rule index: Int, _ request: AuthorizationRequest, host: String) -> RuleMismatch? {
        let rule = rules[index]
        if rule.fromCount >= 0, let (entry, position) = firstFailure(rule.fromFirst, rule.fromCount, request, host) {
            return RuleMismatch(section: .from, entry: entry, condition: position)
        }
        if rule.toCount >= 0, let (entry, position) = firstFailure(rule.toFirst, rule.toCount, request, host) {
            return RuleMismatch(section: .to, entry: entry, condition: position)
        }
        if let position = failingTest(rule.when, request, host) {
            return RuleMismatch(section: .when, entry: 0, condition: position)
        }
        return nil
    }

    /// nil when some entry holds entirely; otherwise the last entry tried and its failing test.
    private func firstFailure(_ first: Int32, _ count: Int32, _ request: AuthorizationRequest,
                              _ host: String) -> (Int, Int)? {
        var failure = (0, 0)
        for entry in 0..<Int(count) {
            guard let position = failingTest(groups[Int(first) + entry], request, host) else { return nil }
            failure = (entry, position)
        }
        return failure
    }

    private func failingTest(_ group: Group, _ request: AuthorizationRequest, _ host: String) -> Int? {
        for index in Int(group.first)..<Int(group.first + group.count) {
            let test = tests[index]
            if matchesAny(test, request, host) == test.negated { return Int(test.position) }
        }
        return nil
    }

    private func matchesAny(_ test: Test, _ request: AuthorizationRequest, _ host: String) -> Bool {
        switch test.kind {
        case .ports:
            return ports[Int(test.first)..<Int(test.first + test.count)].contains(request.port)
        case .methods:
            return request.isHTTP && anyValue(test, request.method)
        case .paths:
            return request.isHTTP && anyValue(test, request.path)
        case .hosts:
            return request.isHTTP && anyValue(test, host)
        case .serverName:
            guard let name = request.serverName else { return false }
            return anyValue(test, name)
        case .sourceIP:
            return anyBlock(test, request.sourceIP)
        case .remoteIP:
            return anyBlock(test, request.remoteIP)
        case .destinationIP:
            return anyBlock(test, request.destinationIP)
        case .requestPrincipals:
            guard let principal = request.jwt?.principal else { return false }
            return anyValue(test, principal)
        case .presenter:
            guard let presenter = request.jwt?.presenter else { return false }
            return anyValue(test, presenter)
        case .audiences:
            guard let jwt = request.jwt else { return false }
            return jwt.audiences.contains { anyValue(test, $0) }
        case .claim:
            guard let jwt = request.jwt else { return false }
            return jwt.containsClaim(claimPaths[Int(test.side)]) { anyValue(test, $0) }
        case .header:
            guard request.isHTTP else { return false }
            return request.headers.containsValue(names[Int(test.side)]) { anyValue(test, bytes: $0) }
        case .principals:
            // `*` is any non-empty identity, SPIFFE or not; other values match the SPIFFE ID without
            // its scheme, as Istio writes principals.
            guard let principal = request.peerPrincipal, !principal.isEmpty else { return false }
            let bare = SPIFFE.bare(principal)
            for index in Int(test.first)..<Int(test.first + test.count) {
                if values[index].mode == .present { return true }
                if let bare, matches(values[index], bare) { return true }
            }
            return false
        case .namespaces:
            guard let namespace = request.peerPrincipal.flatMap(SPIFFE.namespace) else { return false }
            return anyValue(test, namespace)
        case .other:
            return others[Int(test.side)].matchesAny(request)
        }
    }

    private func anyBlock(_ test: Test, _ address: IPAddress?) -> Bool {
        guard let address else { return false }
        return blocks[Int(test.first)..<Int(test.first + test.count)].contains { $0.contains(address) }
    }

    private func anyValue(_ test: Test, _ candidate: some StringProtocol) -> Bool {
        if let found = candidate.utf8.withContiguousStorageIfAvailable({ anyValue(test, bytes: UnsafeRawBufferPointer($0)) }) {
            return found
        }
        return Array(candidate.utf8).withUnsafeBytes { anyValue(test, bytes: $0) }
    }

    private func anyValue(_ test: Test, bytes candidate: UnsafeRawBufferPointer) -> Bool {
        for index in Int(test.first)..<Int(test.first + test.count) where matches(values[index], bytes: candidate) {
            return true
        }
        return false
    }

    private func matches(_ value: Value, _ candidate: Substring) -> Bool {
        if let found = candidate.utf8.withContiguousStorageIfAvailable({ matches(value, bytes: UnsafeRawBufferPointer($0)) }) {
            return found
        }
        return Array(candidate.utf8).withUnsafeBytes { matches(value, bytes: $0) }
    }

    /// Istio's globs, byte-wise (as `ValueMatch.matches(bytes:)`).
    private func matches(_ value: Value, bytes candidate: UnsafeRawBufferPointer) -> Bool {
        let wanted = Int(value.count)
        switch value.mode {
        case .present: return !candidate.isEmpty
        case .exact: if candidate.count != wanted { return false }
        case .prefix, .suffix: if candidate.count < wanted { return false }
        }
        if wanted == 0 { return true }
        let offset = value.mode == .suffix ? candidate.count - wanted : 0
        return memcmp(candidate.baseAddress! + offset, arena.baseAddress! + Int(value.start), wanted) == 0
    }

    // MARK: compilation

    private struct Builder {
        var arena: [UInt8] = []
        var values: [Value] = []
        var blocks: [IPBlock] = []
        var ports: [Int] = []
        var tests: [Test] = []
        var groups: [Group] = []
        var names: [String] = []
        var claimPaths: [[String]] = []
        var others: [Condition] = []

        mutating func add(_ rule: PolicyRule) -> Rule {
            var from: Group?
            var to: Group?
            if let entries = rule.from { from = addEntries(entries) }
            if let entries = rule.to { to = addEntries(entries) }
            return Rule(fromFirst: from?.first ?? 0, fromCount: from?.count ?? -1,
                        toFirst: to?.first ?? 0, toCount: to?.count ?? -1, when: addGroup(rule.when))
        }

        /// The entries' groups, contiguous.
        private mutating func addEntries(_ entries: [[Condition]]) -> Group {
            let compiled = entries.map { addGroup($0) }
            let first = Int32(groups.count)
            groups.append(contentsOf: compiled)
            return Group(first: first, count: Int32(compiled.count))
        }

        /// One entry's tests, contiguous and cheapest first.
        private mutating func addGroup(_ conditions: [Condition]) -> Group {
            let compiled = conditions.enumerated().map { addTest($1, position: $0) }
            let first = Int32(tests.count)
            // A stable sort: equal costs keep the order they were written in.
            tests.append(contentsOf: compiled.enumerated().sorted {
                ($0.element.kind.cost, $0.offset) < ($1.element.kind.cost, $1.offset)
            }.map(\.element))
            return Group(first: first, count: Int32(compiled.count))
        }

        private mutating func addTest(_ condition: Condition, position: Int) -> Test {
            var test = Test(kind: .other, negated: condition.negated, first: 0, count: 0, side: 0, position: Int32(position))
            func globs(_ kind: Kind, _ list: [ValueMatch]) {
                test.kind = kind
                test.first = Int32(values.count)
                test.count = Int32(list.count)
                for value in list { values.append(add(value)) }
            }
            func ipBlocks(_ kind: Kind, _ list: [IPBlock]) {
                test.kind = kind
                test.first = Int32(blocks.count)
                test.count = Int32(list.count)
                blocks.append(contentsOf: list)
            }
            switch condition.test {
            case .principals(let list): globs(.principals, list)
            case .namespaces(let list): globs(.namespaces, list)
            case .requestPrincipals(let list): globs(.requestPrincipals, list)
            case .hosts(let list): globs(.hosts, list)
            case .methods(let list): globs(.methods, list)
            case .audiences(let list): globs(.audiences, list)
            case .presenter(let list): globs(.presenter, list)
            case .serverName(let list): globs(.serverName, list)
            case .sourceIP(let list): ipBlocks(.sourceIP, list)
            case .remoteIP(let list): ipBlocks(.remoteIP, list)
            case .destinationIP(let list): ipBlocks(.destinationIP, list)
            case .ports(let list):
                test.kind = .ports
                test.first = Int32(ports.count)
                test.count = Int32(list.count)
                ports.append(contentsOf: list)
            case .header(let name, let list):
                globs(.header, list)
                test.side = Int32(names.count)
                names.append(name)
            case .claim(let path, let list):
                globs(.claim, list)
                test.side = Int32(claimPaths.count)
                claimPaths.append(path)
            case .paths(let list):
                let plain = list.compactMap { if case .glob(let value) = $0 { value } else { nil } }
                if plain.count == list.count {
                    globs(.paths, plain)
                } else {
                    test.side = Int32(others.count)
                    others.append(condition)
                }
            case .serviceAccounts, .trustDomains:
                test.side = Int32(others.count)
                others.append(condition)
            }
            return test
        }

        private mutating func add(_ value: ValueMatch) -> Value {
            let text: String
            let mode: Mode
            switch value {
            case .exact(let value): (text, mode) = (value, .exact)
            case .prefix(let value): (text, mode) = (value, .prefix)
            case .suffix(let value): (text, mode) = (value, .suffix)
            case .present: (text, mode) = ("", .present)
            }
            let start = Int32(arena.count)
            arena.append(contentsOf: text.utf8)
            return Value(mode: mode, start: start, count: Int32(text.utf8.count))
        }
    }
}

extension RuleProgram.Kind {
    /// Roughly what a test costs: an integer compare, a short byte compare, a lookup in the token's
    /// claims, a scan of every header.
    var cost: Int {
        switch self {
        case .ports: 0
        case .methods, .serverName, .sourceIP, .remoteIP, .destinationIP: 1
        case .hosts, .paths, .requestPrincipals, .presenter: 2
        case .principals, .namespaces, .audiences, .claim: 3
        case .header: 4
        case .other: 5
        }
    }
}

private extension UnsafeMutableBufferPointer {
    /// A buffer of its own holding `elements` (one slot when empty, so every buffer has an address).
    static func copy(_ elements: [Element]) -> UnsafeMutableBufferPointer<Element> {
        let buffer = UnsafeMutableBufferPointer<Element>.allocate(capacity: Swift.max(elements.count, 1))
        _ = buffer.initialize(from: elements)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<elements.count])
    }
}
