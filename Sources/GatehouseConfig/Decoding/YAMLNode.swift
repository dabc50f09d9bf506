/// A YAML value with the position it was read from (see `YAMLComposer`), so that every field keeps its
/// file:line:column for diagnostics.
public indirect enum YAMLValue: Sendable {
    case null
    /// A scalar with its text; `quoted` scalars are always strings (`"1"` is not a number).
    case scalar(String, quoted: Bool)
    case mapping([YAMLEntry])
    case sequence([YAMLNode])
}

public struct YAMLEntry: Sendable {
    public var key: String
    public var keyLine: Int
    public var keyColumn: Int
    public var value: YAMLNode
}

public struct YAMLNode: Sendable {
    public var value: YAMLValue
    public var line: Int
    public var column: Int

    public init(value: YAMLValue, line: Int, column: Int) {
        self.value = value
        self.line = line
        self.column = column
    }

    public subscript(key: String) -> YAMLNode? {
        guard case .mapping(let entries) = value else { return nil }
        return entries.first { $0.key == key }?.value
    }

    public var string: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    var kindName: String {
        switch value {
        case .null: "null"
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

extension YAMLNode {
    static func isNullLiteral(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }
}
