// libyaml's event parser, as Yams vendors it. Yams' own composer is not used: it resolves an alias
// to the anchored node and hashes mapping keys, so a 300-byte alias bomb ("billion laughs") costs
// exponential time before any limit could apply. Composing from events lets every alias be charged
// for the nodes it stands for, as they are counted.
import CYaml

/// Bounds on what one config file may make the loader build. A file past any of them is a load error at
/// the place it crossed the bound; nothing of it is used.
public enum YAMLLimits {
    /// The largest config file read (a Kubernetes object is at most 1.5 MiB in etcd; a file may hold
    /// many).
    public static let maxFileBytes = 16 << 20
    /// Nodes one document may expand to, counting each use of an alias as the whole anchored node
    /// again: a VirtualService with ten thousand routes is far below it, an alias bomb far above.
    public static let maxNodesPerDocument = 1_000_000
    /// How deeply collections may nest (the decoders recurse once per level).
    public static let maxDepth = 128
}

/// A YAML stream composed into `YAMLNode` documents, or the first problem met.
enum YAMLComposer {
    struct Failure: Error {
        var message: String
        /// 1-based, as every diagnostic.
        var line: Int
        var column: Int
    }

    /// The documents of `text`, in order. Documents before a problem are returned with it.
    static func compose(_ text: String) -> (documents: [YAMLNode], failure: Failure?) {
        var documents: [YAMLNode] = []
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0A] }  // libyaml wants a non-empty input to report an empty stream
        let failure: Failure? = bytes.withUnsafeBufferPointer { buffer in
            let reader = EventReader(buffer)
            defer { reader.close() }
            do {
                while true {
                    let event = try reader.next()
                    switch event.type {
                    case YAML_STREAM_START_EVENT: continue
                    case YAML_STREAM_END_EVENT: return nil
                    case YAML_DOCUMENT_START_EVENT:
                        var document = DocumentState()
                        let root = try composeNode(try reader.next(), reader, &document, depth: 0)
                        _ = try reader.next()  // DOCUMENT-END
                        documents.append(root.node)
                    default:
                        throw Failure(message: "syntax error: unexpected event", line: event.line, column: event.column)
                    }
                }
            } catch let failure as Failure {
                return failure
            } catch {
                return Failure(message: "\(error)", line: 1, column: 1)
            }
        }
        return (documents, failure)
    }

    /// Anchors and the node budget of one document (YAML anchors do not cross documents).
    struct DocumentState {
        var anchors: [String: (node: YAMLNode, size: Int)] = [:]
        var nodes = 0

        mutating func charge(_ count: Int, at event: Event) throws {
            nodes += count
            guard nodes <= YAMLLimits.maxNodesPerDocument else {
                throw Failure(message: "the document expands to more than \(YAMLLimits.maxNodesPerDocument) nodes "
                                  + "(each use of an alias counts the anchored node again); refusing to load it",
                              line: event.line, column: event.column)
            }
        }
    }

    private static func composeNode(_ event: Event, _ reader: EventReader, _ document: inout DocumentState,
                                    depth: Int) throws -> (node: YAMLNode, size: Int) {
        let composed: (node: YAMLNode, size: Int)
        switch event.type {
        case YAML_ALIAS_EVENT:
            guard let anchored = document.anchors[event.anchor ?? ""] else {
                throw Failure(message: "syntax error: unknown alias \"*\(event.anchor ?? "")\"", line: event.line,
                              column: event.column)
            }
            try document.charge(anchored.size, at: event)
            return anchored
        case YAML_SCALAR_EVENT:
            try document.charge(1, at: event)
            let text = event.scalar ?? ""
            let quoted = event.style != YAML_PLAIN_SCALAR_STYLE
            let value: YAMLValue = !quoted && YAMLNode.isNullLiteral(text) ? .null : .scalar(text, quoted: quoted)
            composed = (YAMLNode(value: value, line: event.line, column: event.column), 1)
        case YAML_SEQUENCE_START_EVENT:
            try checkDepth(depth, event)
            try document.charge(1, at: event)
            var items: [YAMLNode] = []
            var size = 1
            while true {
                let next = try reader.next()
                if next.type == YAML_SEQUENCE_END_EVENT { break }
                let item = try composeNode(next, reader, &document, depth: depth + 1)
                items.append(item.node)
                size += item.size
            }
            composed = (YAMLNode(value: .sequence(items), line: event.line, column: event.column), size)
        case YAML_MAPPING_START_EVENT:
            try checkDepth(depth, event)
            try document.charge(1, at: event)
            var entries: [YAMLEntry] = []
            var keys: Set<String> = []
            var size = 1
            while true {
                let keyEvent = try reader.next()
                if keyEvent.type == YAML_MAPPING_END_EVENT { break }
                let key = try composeNode(keyEvent, reader, &document, depth: depth + 1)
                guard case .scalar(let name, _) = key.node.value else {
                    let shown = if case .null = key.node.value { "null" } else { "a collection" }
                    throw Failure(message: "syntax error: a mapping key must be a string, not \(shown)",
                                  line: keyEvent.line, column: keyEvent.column)
                }
                guard keys.insert(name).inserted else {
                    throw Failure(message: "syntax error: duplicate key \"\(name)\"", line: keyEvent.line,
                                  column: keyEvent.column)
                }
                let value = try composeNode(try reader.next(), reader, &document, depth: depth + 1)
                entries.append(YAMLEntry(key: name, keyLine: key.node.line, keyColumn: key.node.column, value: value.node))
                size += key.size + value.size
            }
            composed = (YAMLNode(value: .mapping(entries), line: event.line, column: event.column), size)
        default:
            throw Failure(message: "syntax error: unexpected event", line: event.line, column: event.column)
        }
        if let anchor = event.anchor { document.anchors[anchor] = composed }
        return composed
    }

    private static func checkDepth(_ depth: Int, _ event: Event) throws {
        guard depth < YAMLLimits.maxDepth else {
            throw Failure(message: "collections nest more than \(YAMLLimits.maxDepth) levels deep; refusing to load it",
                          line: event.line, column: event.column)
        }
    }

    /// One libyaml event, copied out of the parser's memory.
    struct Event {
        var type: yaml_event_type_t
        var line: Int
        var column: Int
        var scalar: String?
        var style: yaml_scalar_style_t = YAML_ANY_SCALAR_STYLE
        /// The anchor a node defines, or the one an alias names.
        var anchor: String?
    }

    /// libyaml's parser over a buffer that outlives it. The parser lives at a fixed address: libyaml
    /// keeps a pointer to it (its read handler's data), so it must never be copied.
    final class EventReader {
        private let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)

        init(_ buffer: UnsafeBufferPointer<UInt8>) {
            parser.initialize(to: yaml_parser_t())
            yaml_parser_initialize(parser)
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
        }

        func close() {
            yaml_parser_delete(parser)
            parser.deallocate()
        }

        func next() throws -> Event {
            var raw = yaml_event_t()
            guard yaml_parser_parse(parser, &raw) == 1 else { throw failure() }
            defer { yaml_event_delete(&raw) }
            var event = Event(type: raw.type, line: Int(raw.start_mark.line) + 1, column: Int(raw.start_mark.column) + 1)
            switch raw.type {
            case YAML_SCALAR_EVENT:
                let scalar = raw.data.scalar
                event.scalar = scalar.value.map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: Int(scalar.length)), as: UTF8.self)
                } ?? ""
                event.style = scalar.style
                event.anchor = Self.text(scalar.anchor)
            case YAML_SEQUENCE_START_EVENT: event.anchor = Self.text(raw.data.sequence_start.anchor)
            case YAML_MAPPING_START_EVENT: event.anchor = Self.text(raw.data.mapping_start.anchor)
            case YAML_ALIAS_EVENT: event.anchor = Self.text(raw.data.alias.anchor)
            default: break
            }
            return event
        }

        private func failure() -> Failure {
            let problem = parser.pointee.problem.map { String(cString: $0) } ?? "invalid YAML"
            let context = parser.pointee.context.map { String(cString: $0) }
            let mark = parser.pointee.problem_mark
            return Failure(message: "syntax error: \(problem)" + (context.map { " (\($0))" } ?? ""),
                           line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        }

        private static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
        }
    }
}
