import GatehouseRegex
import Foundation

struct VirtualServiceChecks {
    let catalog: ServiceCatalog
    let regexes: RegexCache
    /// False for a VirtualService bound to no Gateway: its destinations and features are the sidecars'.
    var appliesToGateway = true

    func check(_ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let spec = vs.spec
        let hosts = spec.hosts ?? []
        if hosts.isEmpty { out.append(vs.diagnostic("spec.hosts", "at least one host is required")) }
        for (index, host) in hosts.enumerated() {
            if let problem = HostName.problem(host), !HostName.isIPAddress(host) {
                out.append(vs.diagnostic("spec.hosts[\(index)]", problem))
            }
        }
        let gateways = spec.gateways ?? []
        out += checkGatewayReferences(gateways, path: "spec.gateways", vs)
        // A mesh-only VirtualService configures sidecars, not this gateway: it gets Istio's own validation
        // (what `kubectl apply` would refuse) and nothing about hosts or features only a gateway would need.
        let checks = catalog.appliesToGateway(vs) ? self : VirtualServiceChecks(catalog: catalog, regexes: regexes, appliesToGateway: false)
        out += ExportTo.problems(spec.exportTo, in: vs)
        for (index, route) in (spec.http ?? []).enumerated() {
            out += checks.checkHTTPRoute(route, path: "spec.http[\(index)]", vs)
        }
        for (index, route) in (spec.tls ?? []).enumerated() {
            let path = "spec.tls[\(index)]"
            let matches = route.match ?? []
            if matches.isEmpty || matches.contains(where: { ($0.sniHosts ?? []).isEmpty }) {
                out.append(vs.diagnostic(matches.isEmpty ? path : "\(path).match",
                                         "every tls match needs sniHosts (Istio requires them)"))
            }
            out += checks.checkStreamDestinations(route.route, path: path, vs)
        }
        for (index, route) in (spec.tcp ?? []).enumerated() {
            out += checks.checkStreamDestinations(route.route, path: "spec.tcp[\(index)]", vs)
        }
        return out
    }

    func checkStreamDestinations(_ destinations: [RouteDestination]?, path: String,
                                 _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        guard let destinations, !destinations.isEmpty else {
            return [vs.diagnostic(path, "a route needs at least one destination")]
        }
        var out: [Diagnostic] = []
        for (index, entry) in destinations.enumerated() {
            out += checkDestination(entry.destination, path: "\(path).route[\(index)].destination", vs)
        }
        if destinations.count > 1 {
            let total = destinations.reduce(0) { $0 + Int($1.weight ?? 0) }
            if total != 100 { out.append(vs.diagnostic("\(path).route", "weights sum to \(total), not 100")) }
        }
        return out
    }

    func checkGatewayReferences(_ references: [String], path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for (index, reference) in references.enumerated() where reference != "mesh" {
            if catalog.gateway(reference, namespace: vs.namespace) == nil,
               !catalog.isBrokenGateway(reference, namespace: vs.namespace) {
                let id = ServiceCatalog.gatewayID(reference, namespace: vs.namespace)
                out.append(vs.diagnostic("\(path)[\(index)]",
                    "unknown gateway \"\(id)\"\(Suggestion.hint(for: id, in: catalog.knownGatewayIDs))"))
            }
        }
        return out
    }

    func checkHTTPRoute(_ route: HTTPRoute, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let actions = [route.route.map { _ in "route" }, route.redirect.map { _ in "redirect" },
                       route.directResponse.map { _ in "directResponse" }, route.delegate.map { _ in "delegate" }]
            .compactMap { $0 }
        if actions.isEmpty, !vs.hasDecodeErrors {
            out.append(vs.diagnostic(path, "one of route, redirect, directResponse or delegate is required"))
        } else if actions.count > 1 {
            out.append(vs.diagnostic(path, "only one of route, redirect, directResponse or delegate may be set "
                + "(found \(actions.joined(separator: ", ")))"))
        }
        if route.delegate != nil {
            out.append(vs.diagnostic("\(path).delegate", "delegate is not supported by this version of Gatehouse yet"))
        }
        for (index, match) in (route.match ?? []).enumerated() {
            out += checkMatch(match, path: "\(path).match[\(index)]", vs)
        }
        if let destinations = route.route { out += checkDestinations(destinations, path: "\(path).route", vs) }
        if let redirect = route.redirect { out += checkRedirect(redirect, path: "\(path).redirect", vs) }
        if let direct = route.directResponse { out += checkDirectResponse(direct, path: "\(path).directResponse", vs) }
        if let rewrite = route.rewrite {
            if route.redirect != nil || route.directResponse != nil {
                out.append(vs.diagnostic("\(path).rewrite", "rewrite can only be used with route"))
            }
            if rewrite.uri != nil, rewrite.uriRegexRewrite != nil {
                out.append(vs.diagnostic("\(path).rewrite", "only one of uri or uriRegexRewrite may be set"))
            }
            if let uri = rewrite.uri, let problem = WireText.pathProblem(uri) {
                out.append(vs.diagnostic("\(path).rewrite.uri", problem))
            }
            if let authority = rewrite.authority, let problem = WireText.authorityProblem(authority) {
                out.append(vs.diagnostic("\(path).rewrite.authority", problem))
            }
            if let template = rewrite.uriRegexRewrite?.rewrite, let problem = WireText.pathProblem(template) {
                out.append(vs.diagnostic("\(path).rewrite.uriRegexRewrite.rewrite", problem))
            }
            if let regexRewrite = rewrite.uriRegexRewrite {
                if let pattern = regexRewrite.match {
                    if let problem = ConfigValidator.regexProblem(pattern, mode: .search, in: regexes) {
                        out.append(vs.diagnostic("\(path).rewrite.uriRegexRewrite.match", problem))
                    } else if let hazard = CompiledRegex.backtrackingHazard(in: pattern) {
                        out.append(vs.diagnostic("\(path).rewrite.uriRegexRewrite.match", hazard, severity: .warning))
                    }
                } else {
                    out.append(vs.diagnostic("\(path).rewrite.uriRegexRewrite", "missing required field \"match\""))
                }
                if regexRewrite.rewrite == nil {
                    out.append(vs.diagnostic("\(path).rewrite.uriRegexRewrite", "missing required field \"rewrite\""))
                }
            }
        }
        out += checkHeaders(route.headers, path: "\(path).headers", vs)
        guard appliesToGateway else { return out }
        if let retries = route.retries { out += checkRetries(retries, path: "\(path).retries", vs) }
        if let fault = route.fault { out += FaultChecks.check(fault, "\(path).fault", vs, forwards: route.route != nil) }
        out += checkMirrors(route, path: path, vs)
        if let cors = route.corsPolicy {
            if cors.allowOrigins != nil, cors.allowOrigin != nil {
                out.append(vs.diagnostic("\(path).corsPolicy.allowOrigin", "deprecated, and allowOrigins is set: keep allowOrigins only"))
            }
            for (index, match) in (cors.allowOrigins ?? []).enumerated() {
                let count = [match.exact, match.prefix, match.suffix, match.regex].compactMap { $0 }.count
                if count != 1 {
                    out.append(vs.diagnostic("\(path).corsPolicy.allowOrigins[\(index)]", "set exactly one of exact, prefix, suffix or regex"))
                }
            }
            for (field, values) in [("allowMethods", cors.allowMethods), ("allowHeaders", cors.allowHeaders), ("exposeHeaders", cors.exposeHeaders)] {
                for (index, value) in (values ?? []).enumerated() where value.isEmpty || value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
                    out.append(vs.diagnostic("\(path).corsPolicy.\(field)[\(index)]", "\"\(value)\" cannot be written in a header"))
                }
            }
        }
        return out
    }

    /// Istio's checks on `mirror`, `mirrorPercentage` and `mirrors`; each mirror's host is checked as a
    /// route destination is (REGISTRY_ONLY refuses one no ServiceEntry declares).
    func checkMirrors(_ route: HTTPRoute, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func share(_ percent: HTTPFaultInjection.Percent?, _ at: String) {
            if let value = percent?.value, !(0...100).contains(value) {
                out.append(vs.diagnostic(at, "\(value) is not a percentage (0 to 100)"))
            }
        }
        if let mirror = route.mirror {
            out += checkDestination(mirror, path: "\(path).mirror", vs)
            if route.mirrors != nil { out.append(vs.diagnostic("\(path).mirrors", "mirror and mirrors are alternatives: set one")) }
        } else if route.mirrorPercentage != nil || route.mirrorPercent != nil {
            out.append(vs.diagnostic("\(path).mirrorPercentage", "a mirror share without a mirror"))
        }
        share(route.mirrorPercentage, "\(path).mirrorPercentage.value")
        if let percent = route.mirrorPercent, percent > 100 {
            out.append(vs.diagnostic("\(path).mirrorPercent", "\(percent) is not a percentage (0 to 100)"))
        }
        for (index, mirror) in (route.mirrors ?? []).enumerated() {
            out += checkDestination(mirror.destination, path: "\(path).mirrors[\(index)].destination", vs)
            share(mirror.percentage, "\(path).mirrors[\(index)].percentage.value")
        }
        if route.route == nil, route.mirror != nil || route.mirrors != nil {
            out.append(vs.diagnostic("\(path).mirror", "only a route that forwards can mirror"))
        }
        return out
    }

    /// Istio's own checks on `retries`, and the conditions this build does not serve refused by name.
    func checkRetries(_ retries: HTTPRetry, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if let attempts = retries.attempts, attempts < 0 {
            out.append(vs.diagnostic("\(path).attempts", "attempts cannot be negative"))
        }
        for (field, duration) in [("perTryTimeout", retries.perTryTimeout), ("backoff", retries.backoff)] {
            if let duration, duration.nanoseconds < 1_000_000 {
                out.append(vs.diagnostic("\(path).\(field)", "must be at least 1ms"))
            }
        }
        if let retryOn = retries.retryOn {
            for condition in HTTPRetry.parseRetryOn(retryOn).conditions {
                switch condition {
                case "retriable-headers":
                    out += ConfigValidator.notSupported(true, "\(path).retryOn", vs,
                        "retryOn \"retriable-headers\" (its header names come only from a request header the gateway does not trust)")
                case "http3-post-connect-failure":
                    out += ConfigValidator.notSupported(true, "\(path).retryOn", vs, "retryOn \"http3-post-connect-failure\" (no HTTP/3 upstreams)")
                default:
                    if HTTPRetry.Condition(rawValue: condition) == nil {
                        out.append(vs.diagnostic("\(path).retryOn", "\"\(condition)\" is not a valid retryOn policy"))
                    }
                }
            }
        }
        return out
    }

    func checkMatch(_ match: HTTPMatchRequest, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        out += ConfigValidator.stringMatchProblems(match.uri, "\(path).uri", in: vs, regexes: regexes)
        out += ConfigValidator.stringMatchProblems(match.scheme, "\(path).scheme", in: vs, regexes: regexes)
        out += ConfigValidator.stringMatchProblems(match.method, "\(path).method", in: vs, regexes: regexes)
        out += ConfigValidator.stringMatchProblems(match.authority, "\(path).authority", in: vs, regexes: regexes)
        for (field, entries) in [("headers", match.headers), ("withoutHeaders", match.withoutHeaders),
                                 ("queryParams", match.queryParams)] {
            for (name, value) in (entries ?? [:]).sorted(by: { $0.key < $1.key }) {
                let entryPath = "\(path).\(field).\(name)"
                if field != "queryParams", name != name.lowercased() {
                    out.append(vs.diagnostic(entryPath, "header names must be lowercase (\"\(name.lowercased())\")"))
                }
                out += ConfigValidator.stringMatchProblems(value, entryPath, in: vs, regexes: regexes, allowEmpty: true)
            }
        }
        if let port = match.port, port == 0 || port > 65535 {
            out.append(vs.diagnostic("\(path).port", "port \(port) is out of range (1-65535)"))
        }
        if let gateways = match.gateways { out += checkGatewayReferences(gateways, path: "\(path).gateways", vs) }
        return out
    }

    func checkDestinations(_ destinations: [HTTPRouteDestination], path: String,
                           _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if destinations.isEmpty { return [vs.diagnostic(path, "at least one destination is required")] }
        var total: Int64 = 0
        for (index, entry) in destinations.enumerated() {
            let entryPath = "\(path)[\(index)]"
            if let weight = entry.weight {
                if weight < 0 { out.append(vs.diagnostic("\(entryPath).weight", "weight must not be negative")) }
                total += Int64(weight)
            }
            out += checkDestination(entry.destination, path: "\(entryPath).destination", vs)
            out += checkHeaders(entry.headers, path: "\(entryPath).headers", vs)
        }
        if !vs.hasDecodeErrors, destinations.count > 1 || destinations.first?.weight != nil, total != 100,
           !(destinations.count == 1 && total == 0) {
            out.append(vs.diagnostic(destinations.count > 1 ? path : "\(path)[0].weight",
                                     "destination weights sum to \(total), they must sum to 100"))
        }
        return out
    }

    func checkDestination(_ destination: Destination, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        guard appliesToGateway else { return [] }
        guard let entry = catalog.serviceEntry(for: destination.host, namespace: vs.namespace) else {
            if catalog.hasBrokenServiceEntries { return [] }
            if let service = catalog.kubernetesService(for: destination.host, namespace: vs.namespace) {
                return kubernetesServiceProblems(destination, service: service, path: path, vs)
            }
            if catalog.allowsAnyHost, !destination.host.contains("*"), HostName.problem(destination.host, allowWildcard: false) == nil {
                // ALLOW_ANY: reached through DNS, at the port the destination names.
                return destination.port?.number == nil
                    ? [vs.diagnostic("\(path).port", "a host no ServiceEntry declares (outboundTrafficPolicy ALLOW_ANY) needs port.number")]
                    : []
            }
            let fqdn = catalog.fqdn(destination.host, namespace: vs.namespace)
            let expanded = fqdn == destination.host.lowercased() ? "" : " (\(fqdn))"
            let off = !catalog.resolvesKubernetesServices && !destination.host.contains("*")
                ? "; Kubernetes service names are not resolved (Bootstrap dns.kubernetesServices is false)" : ""
            return [vs.diagnostic("\(path).host", "unknown host \"\(destination.host)\"\(expanded): no ServiceEntry "
                + "declares it\(Suggestion.hint(for: fqdn, in: catalog.knownHosts))\(off) (outboundTrafficPolicy is REGISTRY_ONLY)")]
        }
        var out: [Diagnostic] = []
        let ports = entry.spec.ports ?? []
        if let number = destination.port?.number {
            if !ports.contains(where: { $0.number == number }) {
                out.append(vs.diagnostic("\(path).port.number", "\(entry.label) has no port \(number) (it has "
                    + "\(ports.map { String($0.number) }.joined(separator: ", ")))"))
            }
        } else if ports.count > 1 {
            out.append(vs.diagnostic("\(path).port", "\(entry.label) has \(ports.count) ports: the destination must name one"))
        } else if ports.isEmpty {
            out.append(vs.diagnostic("\(path).port", "\(entry.label) declares no ports"))
        }
        if let subset = destination.subset {
            let rules = catalog.destinationRules(for: destination.host, namespace: vs.namespace)
            let names = rules.flatMap { $0.spec.subsets?.map(\.name) ?? [] }
            if !names.contains(subset), !catalog.hasBrokenDestinationRules {
                let owner = rules.isEmpty ? "no DestinationRule defines subsets for this host"
                    : "\(rules.map(\.label).joined(separator: ", ")) define\(rules.count == 1 ? "s" : "") \(names.isEmpty ? "no subsets" : names.joined(separator: ", "))"
                out.append(vs.diagnostic("\(path).subset",
                    "unknown subset \"\(subset)\"\(Suggestion.hint(for: subset, in: names)): \(owner)"))
            }
        }
        return out
    }

    /// A Kubernetes service resolved through DNS: the port has to be named (DNS does not list a service's
    /// ports) and subsets cannot be honoured (they select endpoints by labels, which DNS does not give).
    func kubernetesServiceProblems(_ destination: Destination, service: String, path: String,
                                   _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if destination.port?.number == nil {
            out.append(vs.diagnostic("\(path).port", "\"\(destination.host)\" is the Kubernetes service \(service), "
                + "resolved through DNS, which does not say which ports it has: set port.number (or declare the "
                + "service with a ServiceEntry)"))
        }
        if let subset = destination.subset {
            out.append(vs.diagnostic("\(path).subset", "subset \"\(subset)\" of \(service): subsets select endpoints by "
                + "their labels, and DNS gives addresses without labels; declare the endpoints with a ServiceEntry "
                + "(and WorkloadEntries) to route to a subset"))
        }
        return out
    }

    func checkRedirect(_ redirect: HTTPRedirect, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if let code = redirect.redirectCode, ![301, 302, 303, 307, 308].contains(code) {
            out.append(vs.diagnostic("\(path).redirectCode", "redirect code \(code) is not one of 301, 302, 303, 307, 308"))
        }
        if redirect.port != nil, redirect.derivePort != nil {
            out.append(vs.diagnostic(path, "only one of port or derivePort may be set"))
        }
        if let port = redirect.port, port == 0 || port > 65535 {
            out.append(vs.diagnostic("\(path).port", "port \(port) is out of range (1-65535)"))
        }
        if let scheme = redirect.scheme, scheme.isEmpty || !scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) {
            out.append(vs.diagnostic("\(path).scheme", "invalid scheme \"\(scheme)\""))
        }
        if let uri = redirect.uri, !uri.hasPrefix("/") {
            out.append(vs.diagnostic("\(path).uri", "uri must start with \"/\""))
        }
        if let uri = redirect.uri, let problem = WireText.pathProblem(uri) {
            out.append(vs.diagnostic("\(path).uri", problem))
        }
        if let authority = redirect.authority, let problem = WireText.authorityProblem(authority) {
            out.append(vs.diagnostic("\(path).authority", problem))
        }
        return out
    }

    func checkDirectResponse(_ direct: HTTPDirectResponse, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        if direct.status < 200 || direct.status > 599 {
            out.append(vs.diagnostic("\(path).status", "status \(direct.status) is out of range (200-599)"))
        }
        if let body = direct.body {
            if body.string != nil, body.bytes != nil {
                out.append(vs.diagnostic("\(path).body", "only one of string or bytes may be set"))
            }
            if let bytes = body.bytes, Data(base64Encoded: bytes) == nil {
                out.append(vs.diagnostic("\(path).body.bytes", "not valid base64"))
            }
            let size = body.string?.utf8.count ?? ((body.bytes?.count ?? 0) * 3 / 4)
            if size > 1_048_576 {
                out.append(vs.diagnostic("\(path).body", "body is \(size) bytes; the limit is 1 MiB"))
            }
        }
        return out
    }

    func checkHeaders(_ headers: Headers?, path: String, _ vs: Resource<VirtualServiceSpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for (side, operations) in [("request", headers?.request), ("response", headers?.response)] {
            guard let operations else { continue }
            let names = Array((operations.set ?? [:]).keys) + Array((operations.add ?? [:]).keys) + (operations.remove ?? [])
            for name in names where name.isEmpty || !name.allSatisfy(\.isHTTPTokenCharacter) {
                out.append(vs.diagnostic("\(path).\(side)", "invalid header name \"\(name)\""))
            }
            // Values go on the wire as they are: a control byte would split or corrupt the message.
            let values = Array((operations.set ?? [:]).values) + Array((operations.add ?? [:]).values)
            for value in values {
                if let problem = WireText.fieldValueProblem(value) { out.append(vs.diagnostic("\(path).\(side)", problem)) }
            }
        }
        return out
    }
}

extension Character {
    var isHTTPTokenCharacter: Bool {
        guard isASCII, let ascii = asciiValue else { return false }
        if isLetter || isNumber { return true }
        return "!#$%&'*+-.^_`|~".utf8.contains(ascii) || (self == ":" )
    }
}
