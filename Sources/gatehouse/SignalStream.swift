import Dispatch
import Foundation
import Synchronization

/// Delivers POSIX signals as an async sequence (the default handlers are replaced for those signals).
/// `@unchecked Sendable`: the sources are set once in init and never touched again.
final class SignalStream: @unchecked Sendable {
    let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]
    private let override = Mutex<(@Sendable (Int32) -> Void)?>(nil)

    init(_ signals: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        var made: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            made.append(source)
        }
        sources = made
        for source in made {
            let number = Int32(source.handle)
            source.setEventHandler { [weak self] in
                if let handler = self?.override.withLock({ $0 }), number == SIGTERM || number == SIGINT {
                    handler(number)
                } else {
                    continuation.yield(number)
                }
            }
            source.resume()
        }
    }

    /// After this, SIGTERM and SIGINT go to `handler` instead of the stream.
    func onNextSignal(_ handler: @escaping @Sendable (Int32) -> Void) {
        override.withLock { $0 = handler }
    }
}
