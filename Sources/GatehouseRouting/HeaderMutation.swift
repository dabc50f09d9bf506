/// Istio `headers.request|response`: `remove` first, then `set` (overwrite) and `add` (append), matching
/// Envoy's remove-before-add order. Names are lowercase.
public struct HeaderMutation: Sendable {
    public var overwrite: [(name: String, value: String)]
    public var append: [(name: String, value: String)]
    public var remove: [String]

    public static let none = HeaderMutation(overwrite: [], append: [], remove: [])

    public init(overwrite: [(name: String, value: String)], append: [(name: String, value: String)],
                remove: [String]) {
        self.overwrite = overwrite
        self.append = append
        self.remove = remove
    }

    public var isEmpty: Bool { overwrite.isEmpty && append.isEmpty && remove.isEmpty }

    /// Applies the mutation through closures so any header storage can be used.
    public func apply(remove removeHeader: (String) -> Void, replace: (String, String) -> Void,
                      append appendHeader: (String, String) -> Void) {
        for name in remove { removeHeader(name) }
        for (name, value) in overwrite { replace(name, value) }
        for (name, value) in append { appendHeader(name, value) }
    }
}
