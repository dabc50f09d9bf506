import GatehouseRouting

/// Path normalization, as authorization and routing see the path: for every mode, a result has no NUL,
/// starts with `/`, holds no dot segment (nor `//` when slashes merge), and normalizing it again changes
/// nothing — otherwise an upstream that normalizes once more could see a path no policy was checked on.
enum PathNormalizerTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        let path = String(decoding: data, as: UTF8.self)
        for mode in PathNormalization.allCases {
            guard let once = try? PathNormalizer.normalize(path[...], mode: mode) else { continue }
            if mode == .none { continue }
            if once.utf8.contains(0) { return "\(mode): NUL in \(once.debugDescription)" }
            // Bytes, not Characters: "/" followed by a combining mark is one Character.
            let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
            if once.utf8.first != slash { return "\(mode): \(once.debugDescription) is not absolute" }
            let segments = once.utf8.split(separator: slash, omittingEmptySubsequences: false)
            if segments.contains(where: { $0.elementsEqual([dot]) || $0.elementsEqual([dot, dot]) }) {
                return "\(mode): dot segment left in \(once.debugDescription)"
            }
            if mode != .base, segments.dropFirst().dropLast().contains(where: \.isEmpty) {
                return "\(mode): \"//\" left in \(once.debugDescription)"
            }
            guard let twice = try? PathNormalizer.normalize(once[...], mode: mode) else {
                return "\(mode): \(once.debugDescription) is refused when normalized again"
            }
            if twice != once { return "\(mode): not idempotent: \(path.debugDescription) -> \(once.debugDescription) -> \(twice.debugDescription)" }
        }
        return nil
    }
}
