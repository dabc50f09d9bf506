import Testing
@testable import GatehouseDNS

/// Builds replies byte by byte, as a resolver would send them.
struct ReplyBuilder {
    var id: UInt16 = 0x1234
    var rcode: UInt8 = 0
    var question = "reviews.default.svc.cluster.local"
    var questionType: UInt16 = 1
    var records: [[UInt8]] = []

    static func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    /// A record owned by the question's name (a pointer to offset 12).
    static func record(type: UInt16, ttl: UInt32, data: [UInt8], owner: [UInt8] = [0xC0, 0x0C]) -> [UInt8] {
        owner + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1] + [24, 16, 8, 0].map { UInt8(ttl >> $0 & 0xFF) }
            + [UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
    }

    var bytes: [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF), 0x81, 0x80 | rcode, 0, 1, 0, UInt8(records.count), 0, 0, 0, 0]
            + Self.name(question) + [UInt8(questionType >> 8), UInt8(questionType & 0xFF), 0, 1] + records.flatMap { $0 }
    }
}

@Suite struct DNSMessageTests {
    let question = DNSQuestion(id: 0x1234, name: "Reviews.Default.svc.cluster.local.", type: .a)

    @Test func queryIsARecursiveQuestionForTheLowercasedName() throws {
        let bytes = try #require(question.encoded())
        #expect(Array(bytes[0..<12]) == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[12...]) == ReplyBuilder.name("reviews.default.svc.cluster.local") + [0, 1, 0, 1])
        #expect(DNSQuestion(id: 1, name: "a..b", type: .a).encoded() == nil, "empty label")
        #expect(DNSQuestion(id: 1, name: String(repeating: "x", count: 64) + ".a", type: .a).encoded() == nil)
    }

    @Test func addressesAndTheSmallestTTL() {
        var reply = ReplyBuilder()
        reply.records = [ReplyBuilder.record(type: 1, ttl: 30, data: [10, 0, 0, 7]),
                         ReplyBuilder.record(type: 1, ttl: 5, data: [10, 0, 0, 8]),
                         ReplyBuilder.record(type: 1, ttl: 9, data: [10, 0, 0, 7])]
        let answer = question.answer(from: reply.bytes)
        #expect(answer == .success(DNSAnswer(addresses: [DNSAddress(bytes: [10, 0, 0, 7])!, DNSAddress(bytes: [10, 0, 0, 8])!],
                                             ttl: 5)))
    }

    @Test func followsACNAMEChainAndCountsItsTTL() {
        var reply = ReplyBuilder()
        let target = ReplyBuilder.name("pods.example")
        let cname = ReplyBuilder.record(type: 5, ttl: 3, data: target)
        let targetOffset = reply.bytes.count + 12
        reply.records = [cname, ReplyBuilder.record(type: 1, ttl: 60, data: [192, 0, 2, 1],
                                                    owner: [0xC0, UInt8(targetOffset)]),
                         // Not on the chain: an address for an unrelated name is not used.
                         ReplyBuilder.record(type: 1, ttl: 60, data: [6, 6, 6, 6], owner: ReplyBuilder.name("evil.example"))]
        #expect(question.answer(from: reply.bytes) == .success(DNSAnswer(addresses: [DNSAddress(bytes: [192, 0, 2, 1])!], ttl: 3)))
    }

    @Test func failuresAreNamed() {
        var reply = ReplyBuilder()
        reply.rcode = 3
        #expect(question.answer(from: reply.bytes) == .failure(.nameError))
        reply.rcode = 2
        #expect(question.answer(from: reply.bytes) == .failure(.serverFailure(rcode: 2)))
        reply.rcode = 0
        #expect(question.answer(from: reply.bytes) == .failure(.noRecords))
        reply.records = [ReplyBuilder.record(type: 28, ttl: 5, data: Array(repeating: 0, count: 16))]
        #expect(question.answer(from: reply.bytes) == .failure(.noRecords), "AAAA records do not answer an A question")
    }

    @Test func repliesToAnotherQueryAreNotOurs() {
        var reply = ReplyBuilder()
        reply.records = [ReplyBuilder.record(type: 1, ttl: 30, data: [10, 0, 0, 7])]
        reply.id = 0x4321
        #expect(question.answer(from: reply.bytes) == .failure(.notOurs))
        reply.id = 0x1234
        reply.question = "other.default.svc.cluster.local"
        #expect(question.answer(from: reply.bytes) == .failure(.notOurs))
    }

    @Test(arguments: [
        ("a pointer forward (a loop)", [0xC0, 0x40]),
        ("a pointer past the end", [0xC0]),
    ] as [(String, [UInt8])])
    func hostileNamesAreMalformed(_ what: String, owner: [UInt8]) {
        var reply = ReplyBuilder()
        reply.records = [ReplyBuilder.record(type: 1, ttl: 30, data: [10, 0, 0, 7], owner: owner)]
        guard case .failure(.malformed) = question.answer(from: reply.bytes) else {
            Issue.record("\(what) was accepted")
            return
        }
    }

    @Test func truncatedRepliesAreMalformed() {
        var reply = ReplyBuilder()
        reply.records = [ReplyBuilder.record(type: 1, ttl: 30, data: [10, 0, 0, 7])]
        let bytes = reply.bytes
        for cut in [5, 20, bytes.count - 2] {
            guard case .failure(.malformed) = question.answer(from: Array(bytes[..<cut])) else {
                Issue.record("a reply cut at \(cut) was accepted")
                continue
            }
        }
    }

    @Test func addressText() {
        #expect(DNSAddress(bytes: [10, 1, 2, 3])!.description == "10.1.2.3")
        #expect(DNSAddress(bytes: [0xFD] + Array(repeating: 0, count: 14) + [1])!.description == "fd00::1")
        #expect(DNSAddress(bytes: Array(repeating: 0, count: 15) + [1])!.description == "::1")
        #expect(DNSAddress(bytes: [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1])!.description == "2001:db8:1:0:1::1")
        #expect(DNSAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func resolverAddresses() {
        #expect(ResolverAddress("10.96.0.10") == ResolverAddress(host: "10.96.0.10", port: 53))
        #expect(ResolverAddress("127.0.0.1:5353") == ResolverAddress(host: "127.0.0.1", port: 5353))
        #expect(ResolverAddress("[::1]:5353") == ResolverAddress(host: "::1", port: 5353))
        #expect(ResolverAddress("::1") == ResolverAddress(host: "::1", port: 53))
        #expect(ResolverAddress("dns.example") == nil)
        #expect(ResolverAddress("127.0.0.1:0") == nil)
        let conf = "# generated\nsearch default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\nnameserver fe80::1%eth0\n"
        #expect(ResolverAddress.fromResolvConf(conf) == [ResolverAddress(host: "10.96.0.10", port: 53),
                                                         ResolverAddress(host: "fe80::1", port: 53)])
    }
}
