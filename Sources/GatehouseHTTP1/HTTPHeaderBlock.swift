import NIOCore

/// A header section as received: fields are offsets into the bytes they were parsed from, so nothing is
/// copied or turned into a String unless someone asks for it. Removing a field only marks it; fields
/// the gateway adds are kept beside the received ones. Writing the block copies the runs of received
/// lines that survive verbatim, which is what makes forwarding a head cheap.
public struct HTTPHeaderBlock: Sendable {
    @usableFromInline
    struct Field: Sendable {
        var lineStart: Int32
        var nameLength: Int32
        var valueStart: Int32
        var valueEnd: Int32
        /// The offset just past the line's LF.
        var lineEnd: Int32
        var role: HeaderRole
        var removed: Bool
    }

    /// The bytes the received fields point into.
    @usableFromInline private(set) var source: ByteBuffer
    @usableFromInline private(set) var fields: [Field]
    /// Fields added by the gateway, written after the received ones, in order.
    public private(set) var added: [(name: String, value: String)] = []

    public init() {
        source = ByteBuffer()
        fields = []
    }

    init(source: ByteBuffer, fields: [Field]) {
        self.source = source
        self.fields = fields
    }

    /// The number of fields that will be written.
    public var count: Int {
        var live = added.count
        for field in fields where !field.removed { live += 1 }
        return live
    }

    public var isEmpty: Bool { count == 0 }

    // MARK: reading

    /// Visits each live field as raw bytes, received ones first.
    public func forEach(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ role: HeaderRole) -> Void) {
        source.withUnsafeReadableBytes { bytes in
            for field in fields where !field.removed {
                body(Self.name(of: field, in: bytes), Self.value(of: field, in: bytes), field.role)
            }
        }
        for (name, value) in added {
            let role = HeaderRole.classify(name)
            var name = name
            var value = value
            name.withUTF8 { nameBytes in
                value.withUTF8 { valueBytes in
                    body(UnsafeRawBufferPointer(nameBytes), UnsafeRawBufferPointer(valueBytes), role)
                }
            }
        }
    }

    /// Every live field as Strings: for logs, tests and slow paths.
    public var pairs: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        forEach { name, value, _ in
            result.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return result
    }

    /// The values of every live field named `name` (any case), in order.
    public func values(_ name: String) -> [String] {
        var result: [String] = []
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            forEach { fieldName, value, _ in
                if ASCII.equalsIgnoringCase(fieldName, wanted) { result.append(String(decoding: value, as: UTF8.self)) }
            }
        }
        return result
    }

    public func first(_ name: String) -> String? { values(name).first }

    /// Every live value of `name` (any case) joined with `,`, as a repeated header reads; nil when
    /// absent. One pass, and no array for the usual single value (a rate-limit key is read this way on
    /// every request).
    public func joinedValues(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            var joined: String?
            source.withUnsafeReadableBytes { bytes in
                for field in fields where !field.removed && Int(field.nameLength) == wanted.count {
                    guard ASCII.equalsIgnoringCase(Self.name(of: field, in: bytes), wanted) else { continue }
                    let value = String(decoding: Self.value(of: field, in: bytes), as: UTF8.self)
                    joined = joined.map { $0 + "," + value } ?? value
                }
            }
            for (fieldName, value) in added where fieldName.utf8.count == wanted.count {
                guard ASCII.equalsIgnoringCase(wanted, fieldName) else { continue }
                joined = joined.map { $0 + "," + value } ?? value
            }
            return joined
        }
    }


    public func contains(_ name: String) -> Bool { !values(name).isEmpty }

    /// Whether some live value of `name` (any case) satisfies `test`, on the raw bytes in place.
    public func containsValue(_ name: String, where test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var found = false
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            forEach { fieldName, value, _ in
                if !found, ASCII.equalsIgnoringCase(fieldName, wanted), test(value) { found = true }
            }
        }
        return found
    }

    /// The value of the first live received field with `role`, as a String.
    public func first(role: HeaderRole) -> String? {
        for field in fields where field.role == role && !field.removed {
            return source.withUnsafeReadableBytes { String(decoding: Self.value(of: field, in: $0), as: UTF8.self) }
        }
        for (name, value) in added where HeaderRole.classify(name) == role { return value }
        return nil
    }

    /// Calls `body` with the raw value of each live field with `role`, received ones first.
    public func forEachValue(role: HeaderRole, _ body: (UnsafeRawBufferPointer) -> Void) {
        source.withUnsafeReadableBytes { bytes in
            for field in fields where field.role == role && !field.removed { body(Self.value(of: field, in: bytes)) }
        }
        for (name, value) in added where HeaderRole.classify(name) == role {
            var value = value
            value.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
    }

    public func hasField(role: HeaderRole) -> Bool {
        fields.contains { $0.role == role && !$0.removed } || added.contains { HeaderRole.classify($0.name) == role }
    }

    // MARK: changing

    /// Removes every field named `name` (any case).
    public mutating func remove(_ name: String) {
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            source.withUnsafeReadableBytes { bytes in
                for index in fields.indices where !fields[index].removed {
                    if ASCII.equalsIgnoringCase(Self.name(of: fields[index], in: bytes), wanted) { fields[index].removed = true }
                }
            }
            if !added.isEmpty {
                added.removeAll { (name: String, _) in
                    var name = name
                    return name.withUTF8 { ASCII.equalsIgnoringCase(UnsafeRawBufferPointer($0), wanted) }
                }
            }
        }
    }

    /// Removes every field, received or added, named one of `names` (lowercase; any case matches),
    /// comparing lengths first: for a few names on a hot path, cheaper than `removeAll(where:)`.
    public mutating func remove(anyOf names: [String]) {
        source.withUnsafeReadableBytes { bytes in
            for index in fields.indices where !fields[index].removed {
                let length = Int(fields[index].nameLength)
                let name = Self.name(of: fields[index], in: bytes)
                if names.contains(where: { $0.utf8.count == length && ASCII.equalsIgnoringCase(name, $0) }) {
                    fields[index].removed = true
                }
            }
        }
        guard !added.isEmpty else { return }
        added.removeAll { field in
            let length = field.name.utf8.count
            return names.contains { wanted in
                guard wanted.utf8.count == length else { return false }
                var name = field.name
                return name.withUTF8 { ASCII.equalsIgnoringCase(UnsafeRawBufferPointer($0), wanted) }
            }
        }
    }

    /// Removes every received field with `role`, and every added one of that role.
    public mutating func remove(role: HeaderRole) {
        for index in fields.indices where fields[index].role == role { fields[index].removed = true }
        if !added.isEmpty { added.removeAll { HeaderRole.classify($0.name) == role } }
    }

    public mutating func add(_ name: String, _ value: String) {
        // A forwarded head gains about half a dozen fields (x-forwarded-*, x-request-id, date…): one
        // allocation for them rather than one per doubling.
        if added.capacity == 0 { added.reserveCapacity(8) }
        added.append((name, value))
    }

    /// Replaces every field named `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// Removes fields, received and added alike, deciding on their raw name, value and role. (A block
    /// built from HTTP/2 fields has only added ones: the same rules must reach them.)
    public mutating func removeAll(where shouldRemove: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, HeaderRole) -> Bool) {
        source.withUnsafeReadableBytes { bytes in
            for index in fields.indices where !fields[index].removed {
                let field = fields[index]
                if shouldRemove(Self.name(of: field, in: bytes), Self.value(of: field, in: bytes), field.role) {
                    fields[index].removed = true
                }
            }
        }
        guard !added.isEmpty else { return }
        added.removeAll { field in
            var name = field.name
            var value = field.value
            return name.withUTF8 { name in
                value.withUTF8 { value in
                    shouldRemove(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value), HeaderRole.classify(field.name))
                }
            }
        }
    }

    // MARK: writing

    /// Writes every live field as `name: value\r\n`. Received lines that survive are copied as they
    /// arrived, one copy per run of consecutive lines (the strict parser vouched for them); every added
    /// field goes through `HTTP1Encoder.writeField`, which refuses what is not a valid field. Returns how
    /// many were refused.
    @discardableResult
    public func write(into out: inout ByteBuffer) -> Int {
        if !fields.isEmpty {
            source.withUnsafeReadableBytes { bytes in
                var runStart = -1
                var runEnd = -1
                for field in fields where !field.removed {
                    if Int(field.lineStart) == runEnd {
                        runEnd = Int(field.lineEnd)
                        continue
                    }
                    if runStart >= 0 { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<runEnd])) }
                    runStart = Int(field.lineStart)
                    runEnd = Int(field.lineEnd)
                }
                if runStart >= 0 { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<runEnd])) }
            }
        }
        var refused = 0
        for (name, value) in added where !HTTP1Encoder.writeField(name, value, into: &out) { refused += 1 }
        return refused
    }

    /// An upper bound of the bytes `write(into:)` produces, to size the buffer once.
    public var estimatedSize: Int {
        var size = source.readableBytes
        for (name, value) in added { size += name.utf8.count + value.utf8.count + 4 }
        return size
    }

    // MARK: field access

    @inline(__always)
    static func name(of field: Field, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(field.lineStart)..<Int(field.lineStart + field.nameLength)])
    }

    @inline(__always)
    static func value(of field: Field, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)])
    }
}

extension HTTPHeaderBlock {
    /// A block built from Strings (local replies, tests).
    public init(_ pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs { add(name, value) }
    }
}
