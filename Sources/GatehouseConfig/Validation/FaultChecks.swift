/// Istio's checks on `fault`, and what this build does not inject.
enum FaultChecks {
    static func check(_ fault: HTTPFaultInjection, _ path: String, _ vs: Resource<VirtualServiceSpec>, forwards: Bool) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if !forwards {
            out.append(vs.diagnostic(path, "fault injection applies to routes that forward (route:), not to redirects or direct responses"))
        }
        if fault.delay == nil, fault.abort == nil {
            out.append(vs.diagnostic(path, "set delay, abort or both"))
        }
        func percentage(_ value: HTTPFaultInjection.Percent?, _ field: String) {
            guard let value else { return }
            if let number = value.value, !(0...100).contains(number) {
                out.append(vs.diagnostic("\(field).value", "\(number) is not a percentage (0 to 100)"))
            }
        }
        if let delay = fault.delay {
            let at = "\(path).delay"
            out += ConfigValidator.notSupported(delay.exponentialDelay != nil, "\(at).exponentialDelay", vs, "fault.delay.exponentialDelay")
            if delay.exponentialDelay == nil {
                if let fixed = delay.fixedDelay {
                    if fixed.nanoseconds < 1_000_000 { out.append(vs.diagnostic("\(at).fixedDelay", "\(fixed) is shorter than the 1ms minimum")) }
                } else {
                    out.append(vs.diagnostic(at, "fixedDelay is required"))
                }
            }
            percentage(delay.percentage, "\(at).percentage")
            if let percent = delay.percent, !(0...100).contains(percent) {
                out.append(vs.diagnostic("\(at).percent", "\(percent) is not a percentage (0 to 100)"))
            }
            if delay.percentage == nil, delay.percent == nil {
                out.append(vs.diagnostic(at, "no percentage: as in Istio, this delays no request", severity: .warning))
            }
        }
        if let abort = fault.abort {
            let at = "\(path).abort"
            let kinds = [abort.httpStatus != nil, abort.grpcStatus != nil, abort.http2Error != nil].filter { $0 }.count
            if kinds != 1 {
                out.append(vs.diagnostic(at, "set exactly one of httpStatus, grpcStatus or http2Error"))
            }
            if let status = abort.httpStatus, !(200...599).contains(status) {
                out.append(vs.diagnostic("\(at).httpStatus", "\(status) is not an HTTP status (200 to 599)"))
            }
            if let name = abort.grpcStatus, HTTPFaultInjection.grpcStatusCodes[name] == nil {
                out.append(vs.diagnostic("\(at).grpcStatus", "\"\(name)\" is not a gRPC status name (UNAVAILABLE, NOT_FOUND, …)"))
            }
            out += ConfigValidator.notSupported(abort.http2Error != nil, "\(at).http2Error", vs, "fault.abort.http2Error")
            percentage(abort.percentage, "\(at).percentage")
            if abort.percentage == nil {
                out.append(vs.diagnostic(at, "no percentage: as in Istio, this aborts no request", severity: .warning))
            }
        }
        return out
    }
}
