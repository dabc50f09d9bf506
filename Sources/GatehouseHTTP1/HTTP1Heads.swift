public enum HTTP1Version: Sendable, Equatable {
    case http1_0, http1_1

    public var text: String { self == .http1_0 ? "HTTP/1.0" : "HTTP/1.1" }
}

/// How a message's body is delimited (RFC 9112 §6.3).
public enum HTTP1BodyFraming: Sendable, Equatable {
    case none
    case contentLength(Int64)
    case chunked
    /// A response without length that ends when the connection closes.
    case untilClose
}

/// Limits on what a peer may send in a head.
public struct HTTP1Limits: Sendable {
    /// Bytes from the first byte of the start line to the end of the blank line; also bounds trailers.
    public var maxHeadBytes: Int
    public var maxHeaderCount: Int

    public init(maxHeadBytes: Int = 60 * 1024, maxHeaderCount: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// What the `Connection` header says, and the headers it names that are hop-by-hop for this message.
public struct ConnectionOptions: Sendable, Equatable {
    public var close = false
    public var keepAlive = false
    public var upgrade = false
    /// Whether it names headers other than `close`, `keep-alive` and `upgrade`.
    public var namesOtherHeaders = false

    public init() {}
}

/// A request head as the proxy sees it, whichever protocol carried it: an HTTP/1.1 head as decoded, or
/// an HTTP/2 HEADERS block mapped onto the same shape (`HTTP2RequestMapping`), so routing, policy and
/// forwarding have one input.
public struct RequestHead: Sendable {
    public var method: String
    /// The request-target exactly as sent.
    public var target: String
    public var version: HTTP1Version
    public var headers: HTTPHeaderBlock
    public var framing: HTTP1BodyFraming
    public var connection: ConnectionOptions
    public var hostCount: Int
    public var expectsContinue: Bool
    /// The value of the Content-Length field(s), when the message had one (0 included). Framing toward
    /// the upstream is regenerated from this and `framing`, never copied from what the client wrote.
    public var declaredContentLength: Int64?

    /// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep it.
    public var keepAlive: Bool {
        version == .http1_1 ? !connection.close : (connection.keepAlive && !connection.close)
    }

    public var isHEAD: Bool { method == "HEAD" }

    public init(method: String, target: String, version: HTTP1Version, headers: HTTPHeaderBlock,
                framing: HTTP1BodyFraming, connection: ConnectionOptions, hostCount: Int, expectsContinue: Bool,
                declaredContentLength: Int64? = nil) {
        self.declaredContentLength = declaredContentLength
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.framing = framing
        self.connection = connection
        self.hostCount = hostCount
        self.expectsContinue = expectsContinue
    }
}

public struct HTTP1ResponseHead: Sendable {
    public var version: HTTP1Version
    public var status: Int
    public var headers: HTTPHeaderBlock
    public var framing: HTTP1BodyFraming
    public var connection: ConnectionOptions
    /// The value of the Content-Length field(s), when the response had one; a response to HEAD (or a
    /// 304) keeps it although no body follows.
    public var declaredContentLength: Int64?

    public init(version: HTTP1Version, status: Int, headers: HTTPHeaderBlock, framing: HTTP1BodyFraming,
                connection: ConnectionOptions, declaredContentLength: Int64? = nil) {
        self.declaredContentLength = declaredContentLength
        self.version = version
        self.status = status
        self.headers = headers
        self.framing = framing
        self.connection = connection
    }

    public var keepAlive: Bool {
        if framing == .untilClose { return false }
        return version == .http1_1 ? !connection.close : (connection.keepAlive && !connection.close)
    }

    /// 1xx other than 101: a provisional answer that another head follows.
    public var isInformational: Bool { status >= 100 && status < 200 && status != 101 }
}
