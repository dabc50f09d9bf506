import GatehouseConfig
import Testing

@Suite struct PercentCodingTests {
    @Test func whatIsEncodedDecodesToItself() {
        for text in ["ns/policy/rule|request.headers[x-api-key]|limit:3/3600000000000ns/3", "a b&c=d%e", "ключ", ""] {
            let encoded = PercentCoding.encoded(text)
            #expect(encoded.utf8.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "=") })
            #expect(PercentCoding.decoded(Substring(encoded)) == text)
        }
        #expect(PercentCoding.encoded("a-b_c.d~e") == "a-b_c.d~e")
        #expect(PercentCoding.encoded("a|b") == "a%7Cb")
    }

    @Test func aMalformedEscapeIsNotDecoded() {
        #expect(PercentCoding.decoded("100%") == nil)
        #expect(PercentCoding.decoded("%zz") == nil)
        #expect(PercentCoding.decoded("%4") == nil)
        #expect(PercentCoding.decoded("%41%62") == "Ab")
    }
}
