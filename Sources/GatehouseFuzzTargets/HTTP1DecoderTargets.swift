import GatehouseHTTP1
import NIOCore

/// The HTTP/1.1 decoders (heads, bodies, chunk framing, trailers). Beyond not crashing: whatever they
/// accept is well-formed on the wire, and how the bytes were split into reads changes nothing (a
/// difference is exactly what request smuggling through a proxy exploits).
enum HTTP1DecoderTargets {
    static let limits = HTTP1Limits(maxHeadBytes: 4096, maxHeaderCount: 32)

    static func request(_ data: UnsafeRawBufferPointer) -> String? {
        differential(data) { decoder, buffer in try decoder.nextRequest(&buffer) }
    }

    static func response(_ data: UnsafeRawBufferPointer) -> String? {
        differential(data) { decoder, buffer in try decoder.nextResponse(&buffer) }
    }

    /// The first byte picks a read size; the rest is decoded in one read and in reads of that size.
    static func differential(_ data: UnsafeRawBufferPointer,
                             next: (inout EitherDecoder, inout ByteBuffer) throws -> Event?) -> String? {
        guard let split = data.first else { return nil }
        let bytes = Array(data.dropFirst())
        let whole = decode(bytes, readSize: bytes.count, next: next)
        let pieces = decode(bytes, readSize: Int(split % 16) + 1, next: next)
        return compare(whole, pieces) ?? whole.problem
    }

    /// What a decoder made of a byte stream, independent of how it was read.
    struct Transcript: Equatable {
        var events: [String] = []
        var failed = false
        var problem: String?

        mutating func appendBody(_ bytes: ByteBuffer) {
            // Body pieces are joined: read sizes may cut them differently.
            guard bytes.readableBytes > 0 else { return }
            let text = "body:" + bytes.readableBytesView.map { String($0, radix: 16) }.joined(separator: ",")
            if let last = events.last, last.hasPrefix("body:") {
                events[events.count - 1] = last + "," + text.dropFirst(5)
            } else {
                events.append(text)
            }
        }
    }

    static func decode(_ bytes: [UInt8], readSize: Int,
                       next: (inout EitherDecoder, inout ByteBuffer) throws -> Event?) -> Transcript {
        var transcript = Transcript()
        var decoder = EitherDecoder()
        var buffer = ByteBuffer()
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + max(readSize, 1))
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            do {
                while let event = try next(&decoder, &buffer) {
                    switch event {
                    case .head(let summary, let problem):
                        transcript.events.append(summary)
                        if let problem, transcript.problem == nil { transcript.problem = problem }
                    case .body(let body): transcript.appendBody(body)
                    case .end(let trailers): transcript.events.append("end:" + describe(trailers))
                    }
                }
            } catch {
                transcript.failed = true
                return transcript
            }
        } while offset < bytes.count
        return transcript
    }

    static func compare(_ whole: Transcript, _ pieces: Transcript) -> String? {
        guard whole.events == pieces.events, whole.failed == pieces.failed else {
            return "the read size changed what was decoded:\n whole: \(whole.events) failed=\(whole.failed)\n "
                + "split: \(pieces.events) failed=\(pieces.failed)"
        }
        return nil
    }

    enum Event {
        case head(String, problem: String?)
        case body(ByteBuffer)
        case end(HTTPHeaderBlock?)
    }

    /// Either decoder behind one interface, so one driver serves both.
    struct EitherDecoder {
        var request = HTTP1RequestDecoder(limits: HTTP1DecoderTargets.limits)
        var response = HTTP1ResponseDecoder(limits: HTTP1DecoderTargets.limits)

        mutating func nextRequest(_ buffer: inout ByteBuffer) throws -> Event? {
            switch try request.next(&buffer) {
            case .head(let head)?:
                var problem = fieldProblem(head.headers)
                if !FieldSyntax.isValidMethod(head.method) { problem = "accepted method \(head.method.debugDescription)" }
                if !FieldSyntax.isValidTarget(head.target) { problem = "accepted target \(head.target.debugDescription)" }
                return .head("\(head.method) \(head.target) \(head.framing) \(describe(head.headers))", problem: problem)
            case .body(let body)?: return .body(body)
            case .end(let trailers)?: return .end(trailers)
            case nil: return nil
            }
        }

        mutating func nextResponse(_ buffer: inout ByteBuffer) throws -> Event? {
            switch try response.next(&buffer) {
            case .head(let head)?:
                let problem = fieldProblem(head.headers)
                    ?? ((100...999).contains(head.status) ? nil : "accepted status \(head.status)")
                return .head("\(head.status) \(head.framing) \(describe(head.headers))", problem: problem)
            case .body(let body)?: return .body(body)
            case .end(let trailers)?: return .end(trailers)
            case nil: return nil
            }
        }
    }

    /// A received field the encoder would refuse means the parser let through what it must not.
    static func fieldProblem(_ block: HTTPHeaderBlock) -> String? {
        var problem: String?
        block.forEach { name, value, _ in
            if problem == nil, !FieldSyntax.isValidName(name) || !FieldSyntax.isValidValue(value) {
                problem = "accepted field \(Array(name)) = \(Array(value))"
            }
        }
        return problem
    }

    static func describe(_ block: HTTPHeaderBlock?) -> String {
        guard let block else { return "-" }
        return block.pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "|")
    }
}
