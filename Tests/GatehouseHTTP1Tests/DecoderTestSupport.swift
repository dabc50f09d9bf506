import GatehouseHTTP1
import NIOCore

/// Feeds bytes to a decoder the way a socket would (optionally one byte at a time) and collects events.
struct RequestEvents {
    var heads: [RequestHead] = []
    var body: [UInt8] = []
    var trailers: [HTTPHeaderBlock?] = []
    var ends = 0
    var error: HTTP1Error?

    init(_ text: String, bytesPerRead: Int = .max, limits: HTTP1Limits = HTTP1Limits()) {
        var decoder = HTTP1RequestDecoder(limits: limits)
        var pending = ByteBuffer()
        let bytes = Array(text.utf8)
        var offset = 0
        do {
            while offset < bytes.count {
                let end = min(bytes.count, offset + bytesPerRead)
                pending.writeBytes(bytes[offset..<end])
                offset = end
                while let event = try decoder.next(&pending) {
                    switch event {
                    case .head(let head): heads.append(head)
                    case .body(let data): body += data.readableBytesView
                    case .end(let block):
                        ends += 1
                        trailers.append(block)
                    }
                }
            }
        } catch let error as HTTP1Error {
            self.error = error
        } catch {
            fatalError("unexpected \(error)")
        }
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

struct ResponseEvents {
    var heads: [HTTP1ResponseHead] = []
    var body: [UInt8] = []
    var ends = 0
    var trailers: HTTPHeaderBlock?
    var error: HTTP1Error?

    init(_ text: String, toHEAD: Bool = false, closeAfter: Bool = false, bytesPerRead: Int = .max) {
        var decoder = HTTP1ResponseDecoder(limits: HTTP1Limits())
        decoder.requestIsHEAD = toHEAD
        var pending = ByteBuffer()
        let bytes = Array(text.utf8)
        var offset = 0
        do {
            while offset < bytes.count {
                let end = min(bytes.count, offset + bytesPerRead)
                pending.writeBytes(bytes[offset..<end])
                offset = end
                while let event = try decoder.next(&pending) { record(event) }
            }
            if closeAfter, let event = decoder.endOfInput() { record(event) }
        } catch let error as HTTP1Error {
            self.error = error
        } catch {
            fatalError("unexpected \(error)")
        }
    }

    private mutating func record(_ event: HTTP1ResponseDecoder.Event) {
        switch event {
        case .head(let head): heads.append(head)
        case .body(let data): body += data.readableBytesView
        case .end(let block):
            ends += 1
            trailers = block
        }
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

extension HTTPHeaderBlock {
    var written: String {
        var out = ByteBuffer()
        write(into: &out)
        return String(buffer: out)
    }
}
