import Foundation

enum Log {
    static func info(_ message: String) {
        FileHandle.standardError.write(Data("gatehouse: \(message)\n".utf8))
    }
}
