import NIOCore

/// Turns the bytes a client sends into request heads, body pieces and ends, one at a time. The caller
/// keeps the unread bytes: it decides when to decode the next pipelined request, which is how it
/// applies back-pressure without queueing parsed messages.
public struct HTTP1RequestDecoder {
    public enum Event: Sendable {
        case head(RequestHead)
        case body(ByteBuffer)
        case end(HTTPHeaderBlock?)
    }

    public let limits: HTTP1Limits
    private var state = MessageState()

    public init(limits: HTTP1Limits) { self.limits = limits }

    /// Whether the decoder is waiting for the start of a head (or the rest of one).
    public var expectsHead: Bool { state.expectsHead }

    /// The next event decodable from `buffer`, or nil when more bytes are needed. After an error the
    /// connection must be closed: the decoder does not know where the next message would start.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        if state.expectsHead {
            guard let head = try state.readHead(&buffer, limits: limits) else { return nil }
            let request = try HTTP1HeadParser.parseRequest(head, limits: limits)
            state.startBody(request.framing)
            return .head(request)
        }
        switch try state.nextBodyEvent(&buffer, limits: limits) {
        case .data(let data)?: return .body(data)
        case .end(let trailers)?: return .end(trailers)
        case nil: return nil
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

    public let limits: HTTP1Limits
    private var state = MessageState()
    /// Set before each request: a response to HEAD has no body.
    public var requestIsHEAD = false

    public init(limits: HTTP1Limits) { self.limits = limits }

    public mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        while state.expectsHead {
            guard let head = try state.readHead(&buffer, limits: limits) else { return nil }
            let response = try HTTP1HeadParser.parseResponse(head, limits: limits, requestWasHEAD: requestIsHEAD)
            if response.isInformational { continue }
            state.startBody(response.framing)
            return .head(response)
        }
        switch try state.nextBodyEvent(&buffer, limits: limits) {
        case .data(let data)?: return .body(data)
        case .end(let trailers)?: return .end(trailers)
        case nil: return nil
        }
    }

    /// The connection closed: a body delimited by the close ends here; anything else was cut short.
    public mutating func endOfInput() -> Event? {
        state.endOfInput() ? .end(nil) : nil
    }
}

/// Where a decoder is in the message stream, shared by requests and responses: reading a head (and how
/// far it has scanned), or delimiting a body; back to heads when a body ends.
struct MessageState {
    private enum Phase {
        case head(scanned: Int)
        case body(HTTP1BodyDecoder)
    }

    private var phase = Phase.head(scanned: 0)

    var expectsHead: Bool {
        if case .head = phase { return true }
        return false
    }

    /// The next complete head, sliced off `buffer`, or nil if it has not all arrived.
    mutating func readHead(_ buffer: inout ByteBuffer, limits: HTTP1Limits) throws -> ByteBuffer? {
        guard case .head(var scanned) = phase else { return nil }
        let head = try HeadReader.read(&buffer, scanned: &scanned, limits: limits)
        phase = .head(scanned: scanned)
        return head
    }

    mutating func startBody(_ framing: HTTP1BodyFraming) {
        phase = .body(HTTP1BodyDecoder(framing: framing))
    }

    mutating func nextBodyEvent(_ buffer: inout ByteBuffer, limits: HTTP1Limits) throws -> HTTP1BodyEvent? {
        guard case .body(var body) = phase else { return nil }
        let event = try body.next(&buffer, limits: limits)
        if case .end? = event { phase = .head(scanned: 0) } else { phase = .body(body) }
        return event
    }

    /// The input ended: true if that ends a body delimited by the close.
    mutating func endOfInput() -> Bool {
        guard case .body(let body) = phase, body.isUntilClose else { return false }
        phase = .head(scanned: 0)
        return true
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
            // A lone CR may be the first half of an empty line: wait for its LF, whichever read brings it,
            // so that how the bytes were split never decides what is a blank line and what is a head.
            if buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == ASCII.cr {
                return nil
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
