import Foundation

/// A duration written as Go/Istio accept it: a sequence of decimal numbers with units, e.g. `1.5s`, `100ms`,
/// `1h30m`, `250us`. Stored in nanoseconds.
public struct ConfigDuration: Decodable, Hashable, Sendable, CustomStringConvertible, Comparable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static func seconds(_ value: Double) -> ConfigDuration { .init(nanoseconds: Int64(value * 1e9)) }
    public static func milliseconds(_ value: Int64) -> ConfigDuration { .init(nanoseconds: value * 1_000_000) }

    public var milliseconds: Int64 { nanoseconds / 1_000_000 }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
    public var description: String { Self.format(nanoseconds) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch Self.parse(text) {
        case .success(let duration): self = duration
        case .failure(let problem):
            if let decoder = decoder as? NodeDecoder { throw decoder.failure(problem.message) }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem.message))
        }
    }

    public struct ParseProblem: Error { public let message: String }

    private static let units: [(String, Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]

    public static func parse(_ text: String) -> Result<ConfigDuration, ParseProblem> {
        let bad = ParseProblem(message: "invalid duration \"\(text)\": expected a number with a unit "
            + "(h, m, s, ms, us, ns), e.g. \"1.5s\", \"100ms\", \"1h\"")
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest == "0" { return .success(.init(nanoseconds: 0)) }
        guard !rest.isEmpty, !rest.hasPrefix("-") else { return .failure(bad) }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return .failure(bad) }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !$0.isNumber && $0 != "." }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return .failure(bad) }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total < 9.2e18 else { return .failure(bad) }
        return .success(.init(nanoseconds: Int64(total.rounded())))
    }

    static func format(_ ns: Int64) -> String {
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        return "\(Double(ns) / 1e9)s"
    }
}
