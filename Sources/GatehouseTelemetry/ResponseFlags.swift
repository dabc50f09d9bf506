/// Envoy's response flags: why a request or connection ended the way it did, as the short codes Istio
/// logs (`response_flags`) and puts on its metrics. A bit set: Envoy can report several at once ("UF,URX")
/// and prints them in the order of its own enum, which `description` keeps.
public struct ResponseFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noHealthyUpstream = ResponseFlags(rawValue: 1 << 1)                // UH
    public static let upstreamRequestTimeout = ResponseFlags(rawValue: 1 << 2)           // UT
    public static let upstreamRemoteReset = ResponseFlags(rawValue: 1 << 4)              // UR
    public static let upstreamConnectionFailure = ResponseFlags(rawValue: 1 << 5)        // UF
    public static let upstreamConnectionTermination = ResponseFlags(rawValue: 1 << 6)    // UC
    public static let upstreamOverflow = ResponseFlags(rawValue: 1 << 7)                 // UO
    public static let noRouteFound = ResponseFlags(rawValue: 1 << 8)                     // NR
    public static let delayInjected = ResponseFlags(rawValue: 1 << 9)                    // DI
    public static let faultInjected = ResponseFlags(rawValue: 1 << 10)                   // FI
    public static let rateLimited = ResponseFlags(rawValue: 1 << 11)                     // RL
    public static let rateLimitServiceError = ResponseFlags(rawValue: 1 << 13)           // RLSE
    public static let downstreamConnectionTermination = ResponseFlags(rawValue: 1 << 14) // DC
    public static let upstreamRetryLimitExceeded = ResponseFlags(rawValue: 1 << 15)      // URX
    public static let streamIdleTimeout = ResponseFlags(rawValue: 1 << 16)               // SI
    public static let downstreamProtocolError = ResponseFlags(rawValue: 1 << 18)         // DPE
    public static let durationTimeout = ResponseFlags(rawValue: 1 << 22)                 // DT
    public static let upstreamProtocolError = ResponseFlags(rawValue: 1 << 23)           // UPE
    public static let noClusterFound = ResponseFlags(rawValue: 1 << 24)                  // NC
    public static let dnsResolutionFailed = ResponseFlags(rawValue: 1 << 26)             // DF

    /// Envoy's order (its enum's bit order) with each flag's code.
    static let codes: [(ResponseFlags, String)] = [
        (.noHealthyUpstream, "UH"), (.upstreamRequestTimeout, "UT"), (.upstreamRemoteReset, "UR"),
        (.upstreamConnectionFailure, "UF"), (.upstreamConnectionTermination, "UC"), (.upstreamOverflow, "UO"),
        (.noRouteFound, "NR"), (.delayInjected, "DI"), (.faultInjected, "FI"), (.rateLimited, "RL"),
        (.rateLimitServiceError, "RLSE"), (.downstreamConnectionTermination, "DC"),
        (.upstreamRetryLimitExceeded, "URX"), (.streamIdleTimeout, "SI"), (.downstreamProtocolError, "DPE"),
        (.durationTimeout, "DT"), (.upstreamProtocolError, "UPE"), (.noClusterFound, "NC"),
        (.dnsResolutionFailed, "DF"),
    ]

    /// "-" for none, as Istio logs it; else the codes joined with commas. The common single flags
    /// return a literal, so logging one costs no allocation.
    public var description: String {
        if isEmpty { return "-" }
        for (flag, code) in Self.codes where flag == self { return code }
        return Self.codes.filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}
