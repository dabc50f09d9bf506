import Foundation
import GatehouseTelemetry
import Testing

@Suite struct AccessLogRecordTests {
    func decode(_ record: AccessLogRecord) throws -> [String: Any] {
        let line = record.jsonLine()
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.filter { $0 == UInt8(ascii: "\n") }.count == 1, "exactly one line")
        return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
    }

    @Test func fieldsUseIstioNamesAndTypes() throws {
        var record = AccessLogRecord()
        record.startTimeMillis = 1_795_000_000_123
        record.method = "GET"
        record.path = "/a?b=1"
        record.responseCode = 503
        record.responseFlags = .upstreamConnectionFailure
        record.bytesSent = 91
        record.durationMillis = 12
        record.upstreamCluster = "outbound|80||backend.internal"
        let json = try decode(record)
        #expect(json["start_time"] as? String == "2026-11-18T11:06:40.123Z")
        #expect(json["method"] as? String == "GET")
        #expect(json["response_code"] as? Int == 503)
        #expect(json["response_flags"] as? String == "UF")
        #expect(json["bytes_sent"] as? Int == 91)
        #expect(json["duration"] as? Int == 12)
        #expect(json["upstream_cluster"] as? String == "outbound|80||backend.internal")
        #expect(json["upstream_service_time"] is NSNull, "unset values are null")
        #expect(json.keys.count == 29)
    }

    @Test func hostileValuesCannotForgeALine() throws {
        var record = AccessLogRecord()
        record.userAgent = "evil\"}\n{\"response_code\":200,\u{01}\\"
        record.path = "/ünïcode"
        let json = try decode(record)
        #expect(json["user_agent"] as? String == "evil\"}\n{\"response_code\":200,\u{01}\\")
        #expect(json["path"] as? String == "/ünïcode")
        #expect(json["response_code"] as? Int == 0)
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(Timestamp.iso8601(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(millis: 1_795_000_000_007) == "2026-11-18T11:06:40.007Z")
        var bytes: [UInt8] = []
        Timestamp.appendISO8601(millis: 1_795_000_000_007, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "\"2026-11-18T11:06:40.007Z\"")
    }
}

@Suite struct ResponseFlagsTests {
    @Test func flagsPrintAsEnvoyDoes() {
        #expect(ResponseFlags().description == "-")
        #expect(ResponseFlags.noRouteFound.description == "NR")
        // Several at once: Envoy's enum order, comma-joined, whatever order they were set in.
        let both: ResponseFlags = [.upstreamRetryLimitExceeded, .upstreamConnectionFailure]
        #expect(both.description == "UF,URX")
        #expect(ResponseFlags([.downstreamProtocolError, .noHealthyUpstream]).description == "UH,DPE")
    }
}
