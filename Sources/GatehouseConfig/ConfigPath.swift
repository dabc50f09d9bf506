import Foundation

/// Relative paths in a spec (certificates, the access log, CA bundles) resolve against the directory of
/// the file that names them: one rule for the checks that read the files and the compiler that keeps them.
public enum ConfigPath {
    public static func resolve(_ path: String, against directory: String?) -> String {
        path.hasPrefix("/") ? path : ((directory ?? ".") as NSString).appendingPathComponent(path)
    }
}
