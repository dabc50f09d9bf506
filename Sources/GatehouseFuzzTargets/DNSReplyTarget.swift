import GatehouseDNS

/// A resolver's reply, read as the answer to a fixed question. Input: the reply bytes. Invariants: an
/// accepted answer has addresses of the asked family only and a TTL no larger than 2^31-1; any reply
/// with another id is never accepted.
enum DNSReplyTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        let reply = Array(data)
        for type in [DNSRecordType.a, .aaaa] {
            let question = DNSQuestion(id: 0x1234, name: "svc.ns.svc.cluster.local", type: type)
            guard case .success(let answer) = question.answer(from: reply) else { continue }
            if answer.addresses.isEmpty { return "an answer without addresses" }
            if answer.addresses.contains(where: { $0.isIPv4 != (type == .a) }) { return "an address of the other family" }
            if answer.ttl > 0x7FFF_FFFF { return "a TTL over 2^31-1: \(answer.ttl)" }
            let other = DNSQuestion(id: 0x4321, name: question.name, type: type)
            if case .success = other.answer(from: reply) { return "a reply accepted for another query id" }
        }
        return nil
    }
}
