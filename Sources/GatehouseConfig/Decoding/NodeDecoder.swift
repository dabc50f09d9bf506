/// A `Decoder` over `YAMLNode` that keeps going after a bad field so `validate` can report every problem:
/// an optional field that fails to decode is recorded and read as absent, a bad list element is recorded and
/// skipped, and fields nobody asked for are reported as unknown (with a "did you mean" hint) afterwards.
///
/// Synthesized `Decodable` asks for every property it knows, so the keys a type requested are exactly the
/// fields it understands; whatever else the mapping holds is unknown.
final class DecodeSession {
    struct Problem {
        var path: String
        var line: Int
        var column: Int
        var message: String
        var severity: Diagnostic.Severity = .error
    }

    final class KeyTracker {
        let entries: [YAMLEntry]
        let path: [any CodingKey]
        var requested: Set<String> = []
        var complete = true
        init(entries: [YAMLEntry], path: [any CodingKey]) {
            self.entries = entries
            self.path = path
        }
    }

    var problems: [Problem] = []
    var positions: [String: (line: Int, column: Int)] = [:]
    private var trackers: [String: KeyTracker] = [:]
    private var trackerOrder: [String] = []

    func tracker(for entries: [YAMLEntry], path: [any CodingKey]) -> KeyTracker {
        let key = FieldPath.render(path)
        if let existing = trackers[key] { return existing }
        let tracker = KeyTracker(entries: entries, path: path)
        trackers[key] = tracker
        trackerOrder.append(key)
        return tracker
    }

    func markIncomplete(_ path: [any CodingKey]) {
        trackers[FieldPath.render(path)]?.complete = false
    }

    func record(_ failure: NodeDecodingFailure) {
        guard !failure.alreadyReported else { return }
        problems.append(Problem(path: failure.path, line: failure.line, column: failure.column,
                                message: failure.message))
    }

    /// Reports the fields no decoder asked for. Call once, after decoding.
    func reportUnknownFields() {
        for key in trackerOrder {
            guard let tracker = trackers[key], tracker.complete else { continue }
            for entry in tracker.entries where !tracker.requested.contains(entry.key) {
                let path = FieldPath.render(tracker.path + [FieldKey(entry.key)])
                let message: String
                if IstioFieldsNotImplemented.names.contains(entry.key) {
                    message = "\(entry.key) is a field of Istio's API this version of Gatehouse does not implement yet; "
                        + "refusing to load a configuration it would not enforce"
                } else {
                    message = "unknown field \"\(entry.key)\"\(Suggestion.hint(for: entry.key, in: tracker.requested.sorted()))"
                }
                problems.append(Problem(path: path, line: entry.keyLine, column: entry.keyColumn, message: message))
            }
        }
    }
}

struct NodeDecodingFailure: Error {
    var path: String
    var line: Int
    var column: Int
    var message: String
    var alreadyReported = false
}

struct FieldKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

enum FieldPath {
    static func render(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue, key is FieldKey { text += "[\(index)]"; continue }
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
        return text
    }
}

struct NodeDecoder: Decoder {
    let node: YAMLNode
    let codingPath: [any CodingKey]
    let session: DecodeSession
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func failure(_ message: String) -> NodeDecodingFailure {
        NodeDecodingFailure(path: FieldPath.render(codingPath), line: node.line, column: node.column,
                            message: message)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let entries) = node.value else {
            throw failure("expected a mapping, got \(node.kindName)")
        }
        let tracker = session.tracker(for: entries, path: codingPath)
        return KeyedDecodingContainer(NodeKeyedContainer<Key>(decoder: self, entries: entries, tracker: tracker))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let elements) = node.value else {
            throw failure("expected a list, got \(node.kindName)")
        }
        return NodeUnkeyedContainer(decoder: self, elements: elements)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        NodeSingleValueContainer(decoder: self)
    }

    /// Decodes `type` from `child`, recording the child's position and marking its mapping incomplete when
    /// decoding fails (so a half-read mapping does not produce bogus "unknown field" reports).
    func decode<T: Decodable>(_ type: T.Type, from child: YAMLNode, at path: [any CodingKey]) throws -> T {
        session.positions[FieldPath.render(path)] = (child.line, child.column)
        let decoder = NodeDecoder(node: child, codingPath: path, session: session)
        do {
            return try decoder.decodeValue(type)
        } catch let failure as NodeDecodingFailure {
            session.markIncomplete(path)
            throw failure
        } catch let error as DecodingError {
            session.markIncomplete(path)
            throw decoder.failure(Self.describe(error))
        }
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is String.Type: return try scalarString() as! T
        case is Bool.Type: return try bool() as! T
        case is Int.Type: return try integer(Int.self) as! T
        case is Int32.Type: return try integer(Int32.self) as! T
        case is Int64.Type: return try integer(Int64.self) as! T
        case is UInt32.Type: return try integer(UInt32.self) as! T
        case is UInt64.Type: return try integer(UInt64.self) as! T
        case is UInt16.Type: return try integer(UInt16.self) as! T
        case is Double.Type: return try double() as! T
        default: return try T(from: self)
        }
    }

    func scalarString() throws -> String {
        guard case .scalar(let text, _) = node.value else {
            throw failure("expected a string, got \(node.kindName)")
        }
        return text
    }

    func bool() throws -> Bool {
        guard case .scalar(let text, _) = node.value else {
            throw failure("expected true or false, got \(node.kindName)")
        }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw failure("expected true or false, got \"\(text)\"")
        }
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        guard case .scalar(let text, _) = node.value else {
            throw failure("expected an integer, got \(node.kindName)")
        }
        guard let value = I(text) else {
            if Int64(text) != nil || UInt64(text) != nil {
                throw failure("\(text) is out of range (\(I.min)...\(I.max))")
            }
            throw failure("expected an integer, got \"\(text)\"")
        }
        return value
    }

    func double() throws -> Double {
        guard case .scalar(let text, _) = node.value, let value = Double(text) else {
            throw failure("expected a number, got \(node.string.map { "\"\($0)\"" } ?? node.kindName)")
        }
        return value
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            return context.debugDescription
        case .keyNotFound(let key, _):
            return "missing required field \"\(key.stringValue)\""
        @unknown default:
            return "\(error)"
        }
    }
}

struct NodeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    let entries: [YAMLEntry]
    let tracker: DecodeSession.KeyTracker

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        entries.compactMap { entry in
            tracker.requested.insert(entry.key)
            return Key(stringValue: entry.key)
        }
    }

    private func entry(_ key: Key) -> YAMLEntry? {
        tracker.requested.insert(key.stringValue)
        return entries.first { $0.key == key.stringValue }
    }

    func contains(_ key: Key) -> Bool { entry(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let entry = entry(key) else { return true }
        if case .null = entry.value.value { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let entry = entry(key) else {
            throw decoder.failure("missing required field \"\(key.stringValue)\"")
        }
        if case .null = entry.value.value {
            throw NodeDecodingFailure(path: FieldPath.render(codingPath + [key]), line: entry.keyLine,
                                      column: entry.keyColumn,
                                      message: "missing required value for \"\(key.stringValue)\"")
        }
        return try decoder.decode(type, from: entry.value, at: codingPath + [key])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let entry = entry(key) else { return nil }
        if case .null = entry.value.value { return nil }
        do {
            return try decoder.decode(type, from: entry.value, at: codingPath + [key])
        } catch let failure as NodeDecodingFailure {
            decoder.session.record(failure)
            return nil
        }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type,
                                               forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        guard let entry = entry(key) else { throw decoder.failure("missing required field \"\(key.stringValue)\"") }
        return try NodeDecoder(node: entry.value, codingPath: codingPath + [key], session: decoder.session)
            .container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        guard let entry = entry(key) else { throw decoder.failure("missing required field \"\(key.stringValue)\"") }
        return try NodeDecoder(node: entry.value, codingPath: codingPath + [key], session: decoder.session)
            .unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        guard let entry = entry(key) else { throw decoder.failure("missing required field \"\(key.stringValue)\"") }
        return NodeDecoder(node: entry.value, codingPath: codingPath + [key], session: decoder.session)
    }

    // The primitive requirements all route through the generic paths above.
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Bool.self as Bool.Type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(String.self as String.Type, key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Double.self as Double.Type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try decode(Double.self as Double.Type, key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Int.self as Int.Type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { Int8(clamping: try decode(Int.self as Int.Type, key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { Int16(clamping: try decode(Int.self as Int.Type, key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Int32.self as Int32.Type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Int64.self as Int64.Type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { UInt(try decode(UInt64.self as UInt64.Type, key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { UInt8(clamping: try decode(UInt16.self as UInt16.Type, key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(UInt16.self as UInt16.Type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(UInt32.self as UInt32.Type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(UInt64.self as UInt64.Type, key) }

    private func decode<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        try decode(type, forKey: key) as T
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(type, key) }

    private func present<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        try decodeIfPresent(type, forKey: key) as T?
    }
}

struct NodeUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: NodeDecoder
    let elements: [YAMLNode]
    var currentIndex = 0

    init(decoder: NodeDecoder, elements: [YAMLNode]) {
        self.decoder = decoder
        self.elements = elements
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = elements[currentIndex].value else { return false }
        currentIndex += 1
        return true
    }

    /// Returns the next element that decodes; bad elements are recorded and skipped so the rest of the
    /// list is still checked.
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        while !isAtEnd {
            let index = currentIndex
            currentIndex += 1
            do {
                return try decoder.decode(type, from: elements[index], at: codingPath + [FieldKey(intValue: index)])
            } catch let failure as NodeDecodingFailure {
                decoder.session.record(failure)
            }
        }
        var failure = decoder.failure("list has invalid elements")
        failure.alreadyReported = true
        throw failure
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> {
        let index = currentIndex
        currentIndex += 1
        return try NodeDecoder(node: elements[index], codingPath: codingPath + [FieldKey(intValue: index)],
                               session: decoder.session).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let index = currentIndex
        currentIndex += 1
        return try NodeDecoder(node: elements[index], codingPath: codingPath + [FieldKey(intValue: index)],
                               session: decoder.session).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { decoder }
}

struct NodeSingleValueContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        if case .null = decoder.node.value { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool() }
    func decode(_ type: String.Type) throws -> String { try decoder.scalarString() }
    func decode(_ type: Double.Type) throws -> Double { try decoder.double() }
    func decode(_ type: Float.Type) throws -> Float { Float(try decoder.double()) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.integer(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.integer(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.integer(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.integer(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.integer(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.integer(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.integer(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.integer(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.integer(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.integer(UInt64.self) }
}

/// Fields of Istio's current (or recent) API that the config model does not carry: refused like any
/// unknown field, but named for what they are, so nobody hunts for a typo.
enum IstioFieldsNotImplemented {
    static let names: Set<String> = [
        // RequestAuthentication jwtRules[]
        "presence", "failedStatusInMetadata", "failureMode",
        // DestinationRule connectionPool.http
        "http2ProtocolOptions", "http2KeepAlive",
        // VirtualService tcp[].match[]
        "sourceSubnet",
        // Older VirtualService and Gateway fields Istio has dropped
        "websocketUpgrade",
    ]
}
