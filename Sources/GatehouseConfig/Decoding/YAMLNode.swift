import Yams

/// A YAML value with the position it was read from. Gatehouse decodes config from this tree rather than
/// from Yams' `Node` so that every field keeps its file:line:column for diagnostics.
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
    /// Converts a composed Yams node. Aliases are resolved by Yams before we see them.
    init(_ node: Node) {
        let mark = node.mark
        let line = mark?.line ?? 0, column = mark?.column ?? 0
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                || scalar.style == .literal || scalar.style == .folded
            if !quoted, Self.isNullLiteral(scalar.string) {
                self.init(value: .null, line: line, column: column)
            } else {
                self.init(value: .scalar(scalar.string, quoted: quoted), line: line, column: column)
            }
        case .mapping(let mapping):
            let entries = mapping.map { pair in
                YAMLEntry(key: pair.key.string ?? "\(pair.key)", keyLine: pair.key.mark?.line ?? line,
                          keyColumn: pair.key.mark?.column ?? column, value: YAMLNode(pair.value))
            }
            self.init(value: .mapping(entries), line: line, column: column)
        case .sequence(let sequence):
            self.init(value: .sequence(sequence.map(YAMLNode.init)), line: line, column: column)
        case .alias:
            self.init(value: .null, line: line, column: column)
        }
    }

    static func isNullLiteral(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }
}
