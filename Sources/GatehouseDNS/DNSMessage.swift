/// The two DNS messages the gateway exchanges with a resolver (RFC 1035): a recursive A or AAAA query,
/// and the answer to it. Pure bytes in, values out, so the parser can be fuzzed; a reply is hostile input
/// (anyone who can reach the source port can send one), so every length and pointer is checked.
public enum DNSRecordType: UInt16, Sendable {
    case a = 1
    case cname = 5
    case aaaa = 28
}

public struct DNSQuestion: Sendable, Hashable {
    public var id: UInt16
    /// Lowercased, without the trailing dot.
    public var name: String
    public var type: DNSRecordType

    public init(id: UInt16, name: String, type: DNSRecordType) {
        self.id = id
        self.name = name.lowercased().hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased()
        self.type = type
    }

    /// The query on the wire; nil when the name cannot be a DNS name (an empty label, a label over 63
    /// bytes, a name over 253).
    public func encoded() -> [UInt8]? {
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else { return nil }
            out.append(UInt8(label.utf8.count))
            out.append(contentsOf: label.utf8)
        }
        out += [0, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, 1]
        return out
    }
}

/// A resolved address: 4 bytes (IPv4) or 16 (IPv6).
public struct DNSAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// Dotted quad, or IPv6 as eight hex groups with the longest run of zero groups compressed (RFC 5952).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]) }
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            let start = index
            while index < 8, groups[index] == 0 { index += 1 }
            if index - start > best.length, index - start > 1 { best = (start, index - start) }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return "\(head)::\(tail)"
    }
}

public struct DNSAnswer: Sendable, Hashable {
    public var addresses: [DNSAddress]
    /// The smallest TTL of the records used (the CNAMEs on the way included), in seconds.
    public var ttl: UInt32

    public init(addresses: [DNSAddress], ttl: UInt32) {
        self.addresses = addresses
        self.ttl = ttl
    }
}

public enum DNSFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// NXDOMAIN: the name does not exist.
    case nameError
    /// The name exists but has no record of the type asked.
    case noRecords
    /// SERVFAIL, REFUSED and the other error codes.
    case serverFailure(rcode: UInt8)
    /// Not an answer to our question (another id or name): ignored by the caller, as a spoofing attempt.
    case notOurs
    case malformed(String)
    case timedOut
    case noResolver
    /// The query could not be sent.
    case unreachable(String)

    public var description: String {
        switch self {
        case .nameError: "NXDOMAIN (no such name)"
        case .noRecords: "no address records"
        case .serverFailure(let rcode): "resolver error (rcode \(rcode))"
        case .notOurs: "reply to another query"
        case .malformed(let why): "malformed reply: \(why)"
        case .timedOut: "resolver timed out"
        case .noResolver: "no resolver configured"
        case .unreachable(let why): why
        }
    }
}

extension DNSQuestion {
    /// Reads `reply` as the answer to this question. Addresses are those of the question's name or of a
    /// name a CNAME chain from it leads to (at most 8 links), of the type asked.
    public func answer(from reply: [UInt8]) -> Result<DNSAnswer, DNSFailure> {
        var reader = DNSReader(bytes: reply)
        do {
            return try parse(&reader)
        } catch let failure as DNSFailure {
            return .failure(failure)
        } catch {
            return .failure(.malformed("\(error)"))
        }
    }

    private struct Record {
        var name: String
        var type: UInt16
        var ttl: UInt32
        var address: DNSAddress?
        var target: String?
    }

    private func parse(_ reader: inout DNSReader) throws -> Result<DNSAnswer, DNSFailure> {
        let replyID = try reader.u16()
        let flags = try reader.u16()
        let questions = try reader.u16()
        let answers = try reader.u16()
        _ = try reader.u16()  // authority
        _ = try reader.u16()  // additional
        guard replyID == id, flags & 0x8000 != 0 else { return .failure(.notOurs) }
        guard flags & 0x7800 == 0 else { throw DNSFailure.malformed("not a standard query reply") }
        guard questions == 1 else { return .failure(.notOurs) }
        let asked = try reader.name()
        let askedType = try reader.u16()
        let askedClass = try reader.u16()
        guard asked == name, askedType == type.rawValue, askedClass == 1 else { return .failure(.notOurs) }
        switch UInt8(flags & 0x000F) {
        case 0: break
        case 3: return .failure(.nameError)
        case let rcode: return .failure(.serverFailure(rcode: rcode))
        }
        var records: [Record] = []
        for _ in 0..<answers {
            let owner = try reader.name()
            let recordType = try reader.u16()
            let recordClass = try reader.u16()
            let ttl = try reader.u32()
            let length = Int(try reader.u16())
            let start = reader.offset
            guard start + length <= reader.bytes.count else { throw DNSFailure.malformed("record runs past the end") }
            var record = Record(name: owner, type: recordType, ttl: min(ttl, 0x7FFF_FFFF))
            if recordClass == 1 {
                if recordType == DNSRecordType.a.rawValue || recordType == DNSRecordType.aaaa.rawValue {
                    let wanted = recordType == DNSRecordType.a.rawValue ? 4 : 16
                    guard length == wanted else { throw DNSFailure.malformed("address record of \(length) bytes") }
                    record.address = DNSAddress(bytes: Array(reader.bytes[start..<start + length]))
                } else if recordType == DNSRecordType.cname.rawValue {
                    record.target = try reader.name()
                    guard reader.offset <= start + length else { throw DNSFailure.malformed("CNAME runs past its record") }
                }
            }
            reader.offset = start + length
            records.append(record)
        }
        var chain = [name]
        var ttl = UInt32.max
        while chain.count <= 8, let link = records.first(where: { $0.target != nil && $0.name == chain.last }) {
            guard let target = link.target, !chain.contains(target) else { break }
            chain.append(target)
            ttl = min(ttl, link.ttl)
        }
        let owners = Set(chain)
        let used = records.filter { $0.type == type.rawValue && $0.address != nil && owners.contains($0.name) }
        guard !used.isEmpty else { return .failure(.noRecords) }
        var seen: Set<DNSAddress> = []
        let addresses = used.compactMap(\.address).filter { seen.insert($0).inserted }
        return .success(DNSAnswer(addresses: addresses, ttl: min(ttl, used.map(\.ttl).min() ?? 0)))
    }
}

/// A cursor over a DNS message, with name decompression that only ever jumps backwards (no loops) and
/// never builds a name longer than 255 bytes.
struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func u8() throws -> UInt8 {
        guard offset < bytes.count else { throw DNSFailure.malformed("truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }

    mutating func u32() throws -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }

    /// A possibly compressed name, lowercased, without the trailing dot; the cursor ends after it.
    mutating func name() throws -> String {
        var labels: [String] = []
        var cursor = offset
        var resumeAt: Int? = nil
        var length = 0
        var lowestJump = cursor
        while true {
            guard cursor < bytes.count else { throw DNSFailure.malformed("name runs past the end") }
            let size = Int(bytes[cursor])
            if size == 0 {
                cursor += 1
                break
            }
            if size & 0xC0 == 0xC0 {
                guard cursor + 1 < bytes.count else { throw DNSFailure.malformed("name runs past the end") }
                let target = (size & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < lowestJump else { throw DNSFailure.malformed("compression pointer does not point back") }
                if resumeAt == nil { resumeAt = cursor + 2 }
                lowestJump = target
                cursor = target
                continue
            }
            guard size & 0xC0 == 0 else { throw DNSFailure.malformed("unknown label type") }
            guard cursor + 1 + size <= bytes.count else { throw DNSFailure.malformed("label runs past the end") }
            length += size + 1
            guard length <= 255 else { throw DNSFailure.malformed("name longer than 255 bytes") }
            let label = bytes[(cursor + 1)..<(cursor + 1 + size)].map { byte -> UInt8 in
                (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
            }
            labels.append(String(decoding: label, as: UTF8.self))
            cursor += 1 + size
        }
        offset = resumeAt ?? cursor
        return labels.joined(separator: ".")
    }
}
