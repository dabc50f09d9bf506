import GatehouseHTTP1
import NIOCore
import Testing

/// The encoder is the one place every field written toward an HTTP/1.1 peer passes: whatever produced a
/// field (client, JWT claim, config, upstream), a name that is not a token or a value with a control byte
/// never reaches the wire.
@Suite struct EncoderChokePointTests {
    static let injections: [String] = [
        "a\r\nx-injected: 1", "a\nx-injected: 1", "a\rb", "nul\u{0}byte", "soh\u{1}", "del\u{7F}", "esc\u{1B}[0m",
    ]

    @Test(arguments: injections)
    func addedFieldWithControlByteIsRefused(_ value: String) {
        var block = HTTPHeaderBlock()
        block.add("x-claim", value)
        block.add("x-kept", "fine")
        var out = ByteBuffer()
        let refused = block.write(into: &out)
        #expect(refused == 1)
        #expect(String(buffer: out) == "x-kept: fine\r\n")
    }

    @Test(arguments: ["", "bad name", "x:y", "x\r\ny", "caf\u{E9}"])
    func nameThatIsNotATokenIsRefused(_ name: String) {
        var out = ByteBuffer()
        #expect(!HTTP1Encoder.writeField(name, "v", into: &out))
        #expect(out.readableBytes == 0)
    }

    @Test func valuesAreTrimmedAndTabAndObsTextKept() {
        var out = ByteBuffer()
        #expect(HTTP1Encoder.writeField("x-a", " \tin\tside \t", into: &out))
        #expect(HTTP1Encoder.writeField("x-b", "caf\u{E9}", into: &out))
        #expect(String(buffer: out) == "x-a: in\tside\r\nx-b: caf\u{E9}\r\n")
    }

    @Test(arguments: [("GET", "/a b"), ("GET", "/a\r\nHost: evil"), ("G T", "/"), ("GET", ""), ("", "/")])
    func requestLineThatWouldSplitIsRefused(_ method: String, _ target: String) {
        var out = ByteBuffer()
        #expect(!HTTP1Encoder.writeRequestLine(method: method, target: target, into: &out))
        #expect(out.readableBytes == 0)
    }

    @Test func trailersGoThroughTheSameCheck() {
        var trailers = HTTPHeaderBlock()
        trailers.add("grpc-status", "0")
        trailers.add("grpc-message", "x\r\nset-cookie: a=b")
        var out = ByteBuffer()
        #expect(HTTP1Encoder.writeLastChunk(trailers: trailers, into: &out) == 1)
        #expect(String(buffer: out) == "0\r\ngrpc-status: 0\r\n\r\n")
    }

    @Test(arguments: [(Int64(0), "0"), (4, "4"), (10, "10"), (1_000_000_007, "1000000007")])
    func contentLengthIsWrittenCanonical(_ length: Int64, _ text: String) {
        var out = ByteBuffer()
        HTTP1Encoder.writeContentLength(length, into: &out)
        #expect(String(buffer: out) == "content-length: \(text)\r\n")
    }

    @Test(arguments: [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000"), (65_535, "ffff")])
    func chunkSizesAreLowercaseHex(_ size: Int, _ hex: String) {
        var out = ByteBuffer()
        HTTP1Encoder.writeChunkHeader(size: size, into: &out)
        #expect(String(buffer: out) == "\(hex)\r\n")
    }
}

@Suite struct FieldSyntaxTests {
    @Test(arguments: [("0", Int64(0)), ("5", 5), ("004", 4), ("123456789012345678", 123_456_789_012_345_678)])
    func contentLengthDigits(_ text: String, _ expected: Int64) {
        #expect(FieldSyntax.contentLength(text) == expected)
    }

    @Test(arguments: ["", "+5", "-5", " 5", "5 ", "5,5", "0x10", "1e3", "1234567890123456789", "５"])
    func contentLengthThatIsNotOneNumber(_ text: String) {
        #expect(FieldSyntax.contentLength(text) == nil)
    }

    @Test func authorityRefusesWhatWouldReshapeTheTarget() {
        for good in ["a.example", "a.example:8080", "[::1]:443", "xn--bcher-kva.example"] {
            #expect(FieldSyntax.isValidAuthority(good), "\(good)")
        }
        for bad in ["a b", "a/b", "a?b", "a#b", "user@a", "a\r\nb", "a\u{0}"] {
            #expect(!FieldSyntax.isValidAuthority(bad), "\(bad)")
        }
    }

    @Test func trimmedMeansNoBlankAtEitherEnd() {
        #expect(FieldSyntax.isTrimmed("a b"))
        #expect(FieldSyntax.isTrimmed(""))
        #expect(!FieldSyntax.isTrimmed(" a"))
        #expect(!FieldSyntax.isTrimmed("a\t"))
    }
}
