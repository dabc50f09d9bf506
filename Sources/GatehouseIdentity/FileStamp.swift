#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies a version of a file on disk: a rotated certificate (rewritten, or renamed over the
/// old one as Kubernetes secret volumes and cert-manager do) changes at least one of these.
public struct FileStamp: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// nil when the file cannot be stat'ed (missing, or a dangling link).
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modifiedSeconds = Int(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }

    public static func exists(_ path: String) -> Bool { FileStamp(path: path) != nil }

    /// The current stamp of each of `paths` (nil for one that cannot be stat'ed), to tell a rotation.
    static func stamps(of paths: [String]) -> [String: FileStamp?] {
        var stamps: [String: FileStamp?] = [:]
        for path in paths { stamps[path] = FileStamp(path: path) }
        return stamps
    }
}
