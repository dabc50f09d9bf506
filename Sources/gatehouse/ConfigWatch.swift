import GatehouseConfig
import GatehouseIdentity
import ServiceLifecycle

/// Reloads when something under the config paths changes: a file written, renamed over (the atomic
/// way editors and config-management tools save), added or removed. Polled twice a second; a change is
/// acted on once the files have stayed the same for a whole poll, so an editor's several writes or a
/// copy in progress give one reload of the finished file. A file that stops changing half-written is
/// rejected by the loader like any bad config, and the write that completes it reloads again.
struct ConfigWatch: Service {
    static let interval: Duration = .milliseconds(500)

    let paths: [String]
    let reloader: Reloader
    /// The files as they were when the serving config was read: a change made before the watch began
    /// still counts.
    let loadedStamps: [String: FileStamp?]

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [paths, reloader, loadedStamps] in
            var seen = loadedStamps
            var unsettled = false
            while !Task.isCancelled {
                try await Task.sleep(for: Self.interval)
                let now = Self.stamps(paths)
                if now != seen {
                    seen = now
                    unsettled = true
                } else if unsettled {
                    unsettled = false
                    await reloader.request(reason: "config files changed")
                }
            }
        }
    }

    /// Every config file and every config directory (whose stamp changes when a file is added,
    /// removed or renamed in it).
    static func stamps(_ paths: [String]) -> [String: FileStamp?] {
        var out: [String: FileStamp?] = [:]
        for path in paths + ConfigLoader.files(in: paths) { out[path] = FileStamp(path: path) }
        return out
    }
}
