import NIOCore

/// A header section: fields are offsets into bytes, so nothing is copied or turned into a String unless
/// someone asks for it. Received fields point into the bytes they were parsed from; a field the gateway
/// adds is checked once, when added, and appended to those bytes as its line (`name: value\r\n`), so
/// every field, received or added, is read, removed and written the same way. Removing a field only
/// marks it. Writing the block copies each run of surviving lines at once, which is what makes
/// forwarding a head cheap.
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

    /// The bytes the fields point into: the received lines, then the added ones.
    @usableFromInline private(set) var source: ByteBuffer
    @usableFromInline private(set) var fields: [Field]
    /// How many fields `add` refused: a name that is not a token, or a value with a control byte (CR,
    /// LF, NUL…, what header injection is made of). They are not in the block; `write(into:)` reports them.
    public private(set) var refusedCount = 0

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
        var live = 0
        for field in fields where !field.removed { live += 1 }
        return live
    }

    public var isEmpty: Bool { count == 0 }

    // MARK: reading

    /// Visits each live field as raw bytes, received ones first, then the added ones in order.
    public func forEach(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ role: HeaderRole) -> Void) {
        source.withUnsafeReadableBytes { bytes in
            for field in fields where !field.removed {
                body(Self.name(of: field, in: bytes), Self.value(of: field, in: bytes), field.role)
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
        forEachValue(named: name) { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    public func first(_ name: String) -> String? { values(name).first }

    /// Every live value of `name` (any case) joined with `,`, as a repeated header reads; nil when
    /// absent. One pass, and no array for the usual single value (a rate-limit key is read this way on
    /// every request).
    public func joinedValues(_ name: String) -> String? {
        var joined: String?
        forEachValue(named: name) { raw in
            let value = String(decoding: raw, as: UTF8.self)
            joined = joined.map { $0 + "," + value } ?? value
        }
        return joined
    }

    public func contains(_ name: String) -> Bool {
        var found = false
        forEachValue(named: name) { _ in found = true }
        return found
    }

    /// Whether some live value of `name` (any case) satisfies `test`, on the raw bytes in place.
    public func containsValue(_ name: String, where test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var found = false
        forEachValue(named: name) { value in
            if !found, test(value) { found = true }
        }
        return found
    }

    /// Calls `body` with the raw value of each live field named `name` (any case), comparing lengths first.
    private func forEachValue(named name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            source.withUnsafeReadableBytes { bytes in
                for field in fields where !field.removed && Int(field.nameLength) == wanted.count {
                    if ASCII.equalsIgnoringCase(Self.name(of: field, in: bytes), wanted) { body(Self.value(of: field, in: bytes)) }
                }
            }
        }
    }

    /// The value of the first live field with `role`, as a String.
    public func first(role: HeaderRole) -> String? {
        guard let field = fields.first(where: { $0.role == role && !$0.removed }) else { return nil }
        return source.withUnsafeReadableBytes { String(decoding: Self.value(of: field, in: $0), as: UTF8.self) }
    }

    /// Calls `body` with the raw value of each live field with `role`, in order.
    public func forEachValue(role: HeaderRole, _ body: (UnsafeRawBufferPointer) -> Void) {
        source.withUnsafeReadableBytes { bytes in
            for field in fields where field.role == role && !field.removed { body(Self.value(of: field, in: bytes)) }
        }
    }

    public func hasField(role: HeaderRole) -> Bool {
        fields.contains { $0.role == role && !$0.removed }
    }

    // MARK: changing

    /// Removes every field named `name` (any case).
    public mutating func remove(_ name: String) {
        var name = name
        name.withUTF8 { wanted in
            let wanted = UnsafeRawBufferPointer(wanted)
            source.withUnsafeReadableBytes { bytes in
                for index in fields.indices where !fields[index].removed && Int(fields[index].nameLength) == wanted.count {
                    if ASCII.equalsIgnoringCase(Self.name(of: fields[index], in: bytes), wanted) { fields[index].removed = true }
                }
            }
        }
    }

    /// Removes every field with `role`.
    public mutating func remove(role: HeaderRole) {
        for index in fields.indices where fields[index].role == role { fields[index].removed = true }
    }

    /// Adds `name: value` after the fields there are, its value's outer blanks trimmed; refused (and
    /// counted in `refusedCount`) when the name is not a token or the value holds a control byte.
    public mutating func add(_ name: String, _ value: String) {
        var name = name
        var value = value
        name.withUTF8 { name in
            value.withUTF8 { value in
                add(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value))
            }
        }
    }

    /// Adds a field whose name is one of the gateway's constants and whose value is a number: nothing
    /// to check, no String made (content-length, x-envoy-upstream-service-time, x-ratelimit-*).
    public mutating func add(_ name: StaticString, decimal value: Int64) {
        add(name, decimal: value, role: HeaderRole.classify(Self.bytes(of: name)))
    }

    /// The same, for a name whose role the caller knows (nothing compared on a hot path).
    public mutating func add(_ name: StaticString, decimal value: Int64, role: HeaderRole) {
        assert(FieldSyntax.isValidName(Self.bytes(of: name)) && HeaderRole.classify(Self.bytes(of: name)) == role)
        let lineStart = beginLine()
        source.writeStaticString(name)
        let nameEnd = source.readableBytes
        source.writeStaticString(": ")
        let valueStart = source.readableBytes
        if value < 0 { source.writeInteger(UInt8(ascii: "-")) }
        HTTP1Encoder.writeDecimal(value.magnitude, into: &source)
        endLine(lineStart: lineStart, nameEnd: nameEnd, valueStart: valueStart, role: role)
    }

    private static func bytes(of name: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
    }

    public mutating func add(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        guard FieldSyntax.isValidName(name), FieldSyntax.isValidValue(value) else {
            refusedCount += 1
            return
        }
        let lineStart = beginLine()
        source.writeBytes(name)
        let nameEnd = source.readableBytes
        source.writeStaticString(": ")
        let valueStart = source.readableBytes
        source.writeBytes(ASCII.trimmingWhitespace(value))
        endLine(lineStart: lineStart, nameEnd: nameEnd, valueStart: valueStart, role: HeaderRole.classify(name))
    }

    /// Where the next added line starts. The first addition makes room for the half dozen a forwarded
    /// head gains (x-forwarded-*, x-request-id, date…): one allocation for them, and the received bytes
    /// copied once if they were shared with the read buffer.
    private mutating func beginLine() -> Int {
        if source.writableBytes < 64 { source.reserveCapacity(minimumWritableBytes: 256) }
        if fields.capacity == fields.count { fields.reserveCapacity(fields.count + 8) }
        return source.readableBytes
    }

    private mutating func endLine(lineStart: Int, nameEnd: Int, valueStart: Int, role: HeaderRole) {
        let valueEnd = source.readableBytes
        source.writeStaticString("\r\n")
        fields.append(Field(lineStart: Int32(lineStart), nameLength: Int32(nameEnd - lineStart),
                            valueStart: Int32(valueStart), valueEnd: Int32(valueEnd),
                            lineEnd: Int32(source.readableBytes), role: role, removed: false))
    }

    /// Replaces every field named `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// Removes fields, deciding on their raw name, value and role.
    public mutating func removeAll(where shouldRemove: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, HeaderRole) -> Bool) {
        source.withUnsafeReadableBytes { bytes in
            for index in fields.indices where !fields[index].removed {
                let field = fields[index]
                if shouldRemove(Self.name(of: field, in: bytes), Self.value(of: field, in: bytes), field.role) {
                    fields[index].removed = true
                }
            }
        }
    }

    // MARK: writing

    /// Writes every live field as `name: value\r\n`: the lines as they are, one copy per run of
    /// consecutive survivors (the strict parser vouched for the received ones, `add` checked the
    /// others). Returns how many fields `add` refused.
    @discardableResult
    public func write(into out: inout ByteBuffer) -> Int {
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
        return refusedCount
    }

    /// An upper bound of the bytes `write(into:)` produces, to size the buffer once.
    public var estimatedSize: Int { source.readableBytes }

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
