import NIOCore

/// Turns the bytes a client sends into request heads, body pieces and ends, one at a time. The caller
/// keeps the unread bytes: it decides when to decode the next pipelined request, which is how it
/// applies back-pressure without queueing parsed messages.
public struct HTTP1RequestDecoder {
    public enum Event: Sendable {
        case head(HTTP1RequestHead)
        case body(ByteBuffer)
        case end(HTTPHeaderBlock?)
    }

    private enum State {
        case head(scanned: Int)
        case body(HTTP1BodyDecoder)
    }

    public let limits: HTTP1Limits
    private var state = State.head(scanned: 0)

    public init(limits: HTTP1Limits) { self.limits = limits }

    /// Whether the decoder is waiting for the start of a head (or the rest of one).
    public var expectsHead: Bool {
        if case .head = state { return true }
        return false
    }

    /// The next event decodable from `buffer`, or nil when more bytes are needed. After an error the
    /// connection must be closed: the decoder does not know where the next message would start.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        switch state {
        case .head(var scanned):
            guard let head = try HeadReader.read(&buffer, scanned: &scanned, limits: limits) else {
                state = .head(scanned: scanned)
                return nil
            }
            let request = try HTTP1HeadParser.parseRequest(head, limits: limits)
            state = .body(HTTP1BodyDecoder(framing: request.framing))
            return .head(request)
        case .body(var body):
            let event = try body.next(&buffer, limits: limits)
            switch event {
            case .data(let data)?:
                state = .body(body)
                return .body(data)
            case .end(let trailers)?:
                state = .head(scanned: 0)
                return .end(trailers)
            case nil:
                state = .body(body)
                return nil
            }
        }
    }
}

/// Turns the bytes an upstream sends into response events; skips 1xx interim responses.
public struct HTTP1ResponseDecoder {
    public enum Event: Sendable {
        case head(HTTP1ResponseHead)
        case body(ByteBuffer)
        case end(HTTPHeaderBlock?)
    }

    private enum State {
        case head(scanned: Int)
        case body(HTTP1BodyDecoder)
    }

    public let limits: HTTP1Limits
    private var state = State.head(scanned: 0)
    /// Set before each request: a response to HEAD has no body.
    public var requestIsHEAD = false

    public init(limits: HTTP1Limits) { self.limits = limits }

    public mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        while true {
            switch state {
            case .head(var scanned):
                guard let head = try HeadReader.read(&buffer, scanned: &scanned, limits: limits) else {
                    state = .head(scanned: scanned)
                    return nil
                }
                let response = try HTTP1HeadParser.parseResponse(head, limits: limits, requestWasHEAD: requestIsHEAD)
                if response.isInformational { continue }
                state = .body(HTTP1BodyDecoder(framing: response.framing))
                return .head(response)
            case .body(var body):
                let event = try body.next(&buffer, limits: limits)
                switch event {
                case .data(let data)?:
                    state = .body(body)
                    return .body(data)
                case .end(let trailers)?:
                    state = .head(scanned: 0)
                    return .end(trailers)
                case nil:
                    state = .body(body)
                    return nil
                }
            }
        }
    }

    /// The connection closed: a body delimited by the close ends here; anything else was cut short.
    public mutating func endOfInput() -> Event? {
        guard case .body(let body) = state, body.isUntilClose else { return nil }
        state = .head(scanned: 0)
        return .end(nil)
    }
}

/// Finds and slices off one complete head, skipping the empty lines a client may send between
/// messages (RFC 9112 §2.2).
enum HeadReader {
    static func read(_ buffer: inout ByteBuffer, scanned: inout Int, limits: HTTP1Limits) throws -> ByteBuffer? {
        if scanned == 0 {
            while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                buffer.moveReaderIndex(forwardBy: 2)
            }
        }
        guard buffer.readableBytes > 0 else { return nil }
        let end = try buffer.withUnsafeReadableBytes { try HTTP1HeadParser.findEnd($0, scanned: &scanned) }
        guard let end else {
            if buffer.readableBytes > limits.maxHeadBytes { throw HTTP1Error.headersTooLarge }
            return nil
        }
        guard end <= limits.maxHeadBytes else { throw HTTP1Error.headersTooLarge }
        scanned = 0
        return buffer.readSlice(length: end)!
    }
}
