/// Where each field of one resource was written, so semantic checks made after decoding can still point
/// at a line. Lookups fall back to the nearest enclosing field.
public struct FieldPositions: Sendable {
    var file: String
    var table: [String: Position]
    var documentStart: Position

    struct Position: Sendable { var line: Int; var column: Int }

    public func location(of path: String) -> SourceLocation {
        var probe = Substring(path)
        while true {
            if let position = table[String(probe)] {
                return SourceLocation(file: file, line: position.line, column: position.column)
            }
            guard let cut = probe.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            probe = probe[..<cut]
        }
        return SourceLocation(file: file, line: documentStart.line, column: documentStart.column)
    }
}
