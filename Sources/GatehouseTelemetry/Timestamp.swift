#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// UTC timestamps with milliseconds, as Envoy prints `%START_TIME%`: `2026-11-26T23:04:58.123Z`.
public enum Timestamp {
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// Appends `"2026-11-26T23:04:58.123Z"` (with the quotes) without building a String.
    public static func appendISO8601(millis: Int64, to bytes: inout [UInt8]) {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func put(_ value: Int32, _ width: Int) {
            var divisor: Int32 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        bytes.append(UInt8(ascii: "\""))
        put(parts.tm_year + 1900, 4); bytes.append(UInt8(ascii: "-"))
        put(parts.tm_mon + 1, 2); bytes.append(UInt8(ascii: "-"))
        put(parts.tm_mday, 2); bytes.append(UInt8(ascii: "T"))
        put(parts.tm_hour, 2); bytes.append(UInt8(ascii: ":"))
        put(parts.tm_min, 2); bytes.append(UInt8(ascii: ":"))
        put(parts.tm_sec, 2); bytes.append(UInt8(ascii: "."))
        put(Int32(millis % 1000), 3); bytes.append(UInt8(ascii: "Z"))
        bytes.append(UInt8(ascii: "\""))
    }

    public static func iso8601(millis: Int64) -> String {
        var bytes: [UInt8] = []
        appendISO8601(millis: millis, to: &bytes)
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }
}
