/// The pure part of the upstream pool: idle connections per endpoint key, most recently used first
/// (warm connections are reused, cold ones age out). No I/O: the shell closes what this evicts.
struct IdleConnectionStack<Connection: AnyObject, Key: Hashable> {
    private var idle: [Key: [Connection]] = [:]
    let maxIdlePerKey: Int

    init(maxIdlePerKey: Int) { self.maxIdlePerKey = maxIdlePerKey }

    /// Takes the most recently returned connection for `key`, skipping (and dropping) any that
    /// `isUsable` rejects.
    mutating func take(_ key: Key, isUsable: (Connection) -> Bool) -> Connection? {
        while let connection = idle[key]?.popLast() {
            if isUsable(connection) { return connection }
        }
        return nil
    }

    /// Returns a connection; gives back the one to close when the key is already at capacity.
    mutating func put(_ connection: Connection, key: Key) -> Connection? {
        // In place: copying the list out and back would copy it on every release.
        idle[key, default: []].append(connection)
        guard idle[key]!.count > maxIdlePerKey else { return nil }
        return idle[key]!.removeFirst()
    }

    mutating func remove(_ connection: Connection, key: Key) {
        idle[key]?.removeAll { $0 === connection }
    }

    func count(_ key: Key) -> Int { idle[key]?.count ?? 0 }

}
