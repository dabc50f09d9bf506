/// A string enum read from YAML. An unknown value is an error that lists the accepted ones and suggests the
/// closest, so `ROUND_ROBBIN` points at `ROUND_ROBIN`.
public protocol ConfigEnum: RawRepresentable<String>, CaseIterable, Decodable, Sendable, Hashable {}

extension ConfigEnum {
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let names = Self.allCases.map(\.rawValue)
            let message = "unknown value \"\(raw)\"\(Suggestion.hint(for: raw, in: names)); expected one of "
                + names.joined(separator: ", ")
            if let decoder = decoder as? NodeDecoder { throw decoder.failure(message) }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
        }
        self = value
    }
}

/// A field Gatehouse reads but does not interpret yet; its presence is reported as a warning by the
/// validator so nothing is ignored silently.
public struct UninterpretedValue: Decodable, Sendable, Hashable {
    public init(from decoder: any Decoder) throws {}
}
