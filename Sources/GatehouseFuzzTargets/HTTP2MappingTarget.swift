import GatehouseHTTP1
import NIOCore

/// HTTP/2 request fields → the HTTP/1.1 head sent upstream. The property that matters: whatever the
/// mapping accepts encodes as an HTTP/1.1 head that an HTTP/1.1 server parses back to the same method,
/// target and fields, with exactly one framing — no field can smuggle a second message.
///
/// Input: a flags byte (bit 0: END_STREAM), then fields as (length, name, length, value) pieces.
enum HTTP2MappingTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> String? {
        var input = FuzzInput(data)
        let endStream = input.byte() & 1 == 1
        var fields: [(String, String)] = []
        while !input.isAtEnd {
            fields.append((String(decoding: input.piece(), as: UTF8.self), String(decoding: input.piece(), as: UTF8.self)))
        }
        let mapped: HTTP2MappedRequest
        do {
            mapped = try HTTP2RequestMapping.map(fields, endStream: endStream,
                                                 limits: HTTP1Limits(maxHeadBytes: 4096, maxHeaderCount: 32),
                                                 makeWebSocketKey: { "dGhlIHNhbXBsZSBub25jZQ==" })
        } catch {
            return nil
        }
        return roundTrip(mapped.head)
    }

    /// Encodes `head` as the upstream builder does (framing regenerated) and parses it back.
    static func roundTrip(_ head: RequestHead) -> String? {
        var headers = head.headers
        headers.removeAll { _, _, role in role.isFraming }
        var out = ByteBuffer()
        guard HTTP1Encoder.writeRequestLine(method: head.method, target: head.target, into: &out) else {
            return "the mapping accepted a request line the encoder refuses: \(head.method) \(head.target.debugDescription)"
        }
        guard headers.write(into: &out) == 0 else { return "the mapping accepted a field the encoder refuses" }
        switch head.framing {
        case .contentLength(let length): HTTP1Encoder.writeContentLength(length, into: &out)
        case .chunked: out.writeStaticString("transfer-encoding: chunked\r\n")
        case .none, .untilClose: break
        }
        out.writeStaticString("\r\n")
        let wire = String(buffer: out)
        var decoder = HTTP1RequestDecoder(limits: HTTP1Limits(maxHeadBytes: 1 << 20, maxHeaderCount: 1000))
        let parsed: RequestHead
        do {
            guard case .head(let head)? = try decoder.next(&out) else { return "no head parsed back from \(wire.debugDescription)" }
            parsed = head
        } catch {
            return "the encoded head does not parse (\(error)): \(wire.debugDescription)"
        }
        guard parsed.method == head.method, parsed.target == head.target else {
            return "request line changed: \(wire.debugDescription)"
        }
        guard parsed.framing == head.framing else { return "framing changed from \(head.framing) to \(parsed.framing)" }
        let sent = headers.pairs.map { "\($0.name.lowercased()): \($0.value)" }
        let received = parsed.headers.pairs.filter { !HeaderRole.classify($0.name).isFraming }
            .map { "\($0.name.lowercased()): \($0.value)" }
        guard sent == received else { return "fields changed:\n sent \(sent)\n parsed \(received)" }
        return nil
    }
}
