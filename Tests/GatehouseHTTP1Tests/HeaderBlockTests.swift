import GatehouseHTTP1
import NIOCore
import Testing

@Suite struct HeaderBlockTests {
    private func parsed(_ fields: String) -> HTTPHeaderBlock {
        RequestEvents("GET / HTTP/1.1\r\n\(fields)\r\n").heads[0].headers
    }

    @Test func survivingLinesAreWrittenAsReceived() {
        let block = parsed("Host: a\r\nX-One:  1\r\nX-Two: 2\r\n")
        #expect(block.written == "Host: a\r\nX-One:  1\r\nX-Two: 2\r\n")
    }

    @Test func removedFieldsAreSkippedAndAddedOnesFollow() {
        var block = parsed("Host: a\r\nX-Drop: 1\r\nX-Keep: 2\r\nx-drop: 3\r\n")
        block.remove("x-DROP")
        block.add("x-new", "v")
        #expect(block.written == "Host: a\r\nX-Keep: 2\r\nx-new: v\r\n")
        #expect(block.count == 3)
    }

    @Test func rulesByRoleReachAddedFieldsToo() {
        // A block built from HTTP/2 fields has only added ones; hop-by-hop and x-envoy rules must apply.
        var block = HTTPHeaderBlock([("x-envoy-retry-on", "5xx"), ("x-forwarded-for", "203.0.113.7"), ("x-kept", "1")])
        var forwarded: [String] = []
        block.forEachValue(role: .forwardedFor) { forwarded.append(String(decoding: $0, as: UTF8.self)) }
        #expect(forwarded == ["203.0.113.7"])
        block.removeAll { _, _, role in role == .envoyInternal || role == .forwardedFor }
        #expect(block.pairs.map(\.name) == ["x-kept"])
    }

    @Test func setReplacesReceivedAndAddedFields() {
        var block = parsed("X-A: 1\r\nX-A: 2\r\n")
        block.add("x-a", "3")
        block.set("x-a", "4")
        #expect(block.values("x-a") == ["4"])
    }

    @Test func joinedValuesReadsARepeatedHeaderAsOneInAnyCase() {
        var block = parsed("X-Api-Key: k1\r\nX-Api-Keys: other\r\nx-api-key: k2\r\n")
        block.add("X-API-KEY", "k3")
        #expect(block.joinedValues("x-api-key") == "k1,k2,k3")
        #expect(block.joinedValues("x-api-keys") == "other")
        #expect(block.joinedValues("x-api-ke") == nil)
        block.remove("x-api-key")
        #expect(block.joinedValues("x-api-key") == nil)
        #expect(parsed("X-Empty: \r\n").joinedValues("x-empty") == "")
    }

    @Test func rateLimitFieldsAreRecognisedAndRemovedByRole() {
        var block = parsed("X-RateLimit-Limit: 9\r\nX-RateLimit-Limits: kept\r\nx-ratelimit-reset: 1\r\nX-Other: 2\r\n")
        block.add("X-RATELIMIT-REMAINING", "3")
        block.add("x-ratelimit-limitx", "kept too")
        block.remove(role: .rateLimit)
        #expect(block.pairs.map(\.name) == ["X-RateLimit-Limits", "X-Other", "x-ratelimit-limitx"])
    }

    @Test func removeByRoleAndPredicate() {
        var block = parsed("Keep-Alive: 5\r\nTE: trailers\r\nX-Envoy-Foo: 1\r\nX-Other: 2\r\n")
        block.remove(role: .hopByHop)
        block.removeAll { _, _, role in role == .envoyInternal }
        #expect(block.pairs.map(\.name) == ["X-Other"])
    }

    @Test func addedFieldsAreCheckedWhenAddedAndWrittenAsLines() {
        var block = parsed("Host: a\r\nX-Old: 1\r\n")
        block.add("x-trimmed", "  v  ")
        block.add("x-injected", "a\r\nx-evil: 1")
        block.add("bad name", "v")
        block.add(":status", "200")
        block.add("content-length", decimal: 1_024)
        block.add("x-negative", decimal: -5)
        #expect(block.refusedCount == 3)
        #expect(block.values("x-trimmed") == ["v"])
        #expect(block.first(role: .contentLength) == "1024")
        #expect(!block.contains("x-injected") && !block.contains("x-evil"))
        // A removed line between the received and the added ones: two runs, written in order.
        block.remove("x-old")
        var out = ByteBuffer()
        #expect(block.write(into: &out) == 3)
        #expect(String(buffer: out) == "Host: a\r\nx-trimmed: v\r\ncontent-length: 1024\r\nx-negative: -5\r\n")
        #expect(block.estimatedSize >= out.readableBytes)
        // Removing an added field by name, role or predicate reaches it like a received one.
        block.remove(role: .contentLength)
        block.removeAll { name, _, _ in name.count == 10 }
        #expect(block.pairs.map(\.name) == ["Host", "x-trimmed"])
    }

    @Test func rolesAreRecognisedInAnyCase() {
        #expect(HeaderRole.classify("X-Forwarded-For") == .forwardedFor)
        #expect(HeaderRole.classify("PROXY-CONNECTION") == .hopByHop)
        #expect(HeaderRole.classify("x-envoy-anything") == .envoyInternal)
        #expect(HeaderRole.classify("x-envoy-upstream-service-time") == .upstreamServiceTime)
        #expect(HeaderRole.classify("x-forwarded-host") == .other)
    }
}

@Suite struct EncoderTests {
    @Test func decimalsAreWrittenWhole() {
        for value: UInt64 in [0, 7, 10, 99, 1_024, 4_000_000_000, .max] {
            var out = ByteBuffer()
            HTTP1Encoder.writeDecimal(value, into: &out)
            #expect(String(buffer: out) == String(value))
        }
    }

    @Test func startLinesAndChunks() {
        var out = ByteBuffer()
        HTTP1Encoder.writeRequestLine(method: "GET", target: "/x?y", into: &out)
        HTTP1Encoder.writeStatusLine(status: 503, into: &out)
        HTTP1Encoder.writeStatusLine(status: 599, into: &out)
        HTTP1Encoder.writeChunkHeader(size: 255, into: &out)
        HTTP1Encoder.writeLastChunk(trailers: HTTPHeaderBlock([("grpc-status", "0")]), into: &out)
        #expect(String(buffer: out) == "GET /x?y HTTP/1.1\r\nHTTP/1.1 503 Service Unavailable\r\nHTTP/1.1 599 \r\n"
                + "ff\r\n0\r\ngrpc-status: 0\r\n\r\n")
    }
}
