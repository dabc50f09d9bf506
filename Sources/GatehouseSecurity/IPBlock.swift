#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as two 64-bit halves (IPv4 in the low 32 bits). IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, what a dual-stack socket reports) are read as IPv4, so one CIDR covers both spellings.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv4: Bool

    public init?(_ text: some StringProtocol) {
        var text = String(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }  // IPv6 zone
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        if high == 0, low >> 32 == 0xFFFF {
            self.init(ipv4: UInt32(truncatingIfNeeded: low))
            return
        }
        self.init(high: high, low: low)
    }

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
        isIPv4 = false
    }

    public init(ipv4: UInt32) {
        high = 0
        low = UInt64(ipv4)
        isIPv4 = true
    }

    public var description: String {
        if isIPv4 {
            let value = UInt32(truncatingIfNeeded: low)
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        }
        var groups: [String] = []
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(String(high >> UInt64(shift) & 0xFFFF, radix: 16)) }
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(String(low >> UInt64(shift) & 0xFFFF, radix: 16)) }
        return groups.joined(separator: ":")
    }
}

/// An `ipBlocks`/`remoteIpBlocks` entry or a `source.ip`-style `when` value: one address or a CIDR.
public struct IPBlock: Sendable, Hashable, CustomStringConvertible {
    public var network: IPAddress
    public var prefixLength: Int

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let maximum = address.isIPv4 ? 32 : 128
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length), !parts[1].hasPrefix("+") else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        network = address
        // Host bits are ignored, as Envoy's CidrRange does.
        network = masked(address)
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.isIPv4 == network.isIPv4 && masked(address) == network
    }

    private func masked(_ address: IPAddress) -> IPAddress {
        var out = address
        if address.isIPv4 {
            let bits = prefixLength
            let mask: UInt64 = bits == 0 ? 0 : (UInt64(0xFFFF_FFFF) << UInt64(32 - bits)) & 0xFFFF_FFFF
            out.low &= mask
            return out
        }
        let highBits = min(prefixLength, 64)
        let lowBits = max(prefixLength - 64, 0)
        out.high &= highBits == 0 ? 0 : ~UInt64(0) << UInt64(64 - highBits)
        out.low &= lowBits == 0 ? 0 : ~UInt64(0) << UInt64(64 - lowBits)
        return out
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
