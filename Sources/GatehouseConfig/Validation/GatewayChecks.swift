enum GatewayChecks {
    static func check(_ gateway: Resource<GatewaySpec>) -> [Diagnostic] {
        var out: [Diagnostic] = []
        guard let servers = gateway.spec.servers, !servers.isEmpty else {
            return [gateway.diagnostic("spec.servers", "at least one server is required")]
        }
        for (index, server) in servers.enumerated() {
            let path = "spec.servers[\(index)]"
            if server.port.number == 0 || server.port.number > 65535 {
                out.append(gateway.diagnostic("\(path).port.number", "port \(server.port.number) is out of range (1-65535)"))
            }
            guard let proto = ServerProtocol(istio: server.port.protocol) else {
                let names = ServerProtocol.allCases.map(\.rawValue)
                out.append(gateway.diagnostic("\(path).port.protocol",
                    "unknown protocol \"\(server.port.protocol)\"\(Suggestion.hint(for: server.port.protocol, in: names)); "
                        + "expected one of \(names.joined(separator: ", "))"))
                continue
            }
            let hosts = server.hosts ?? []
            if hosts.isEmpty { out.append(gateway.diagnostic("\(path).hosts", "at least one host is required")) }
            for (hostIndex, entry) in hosts.enumerated() {
                let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
                let host = parts.count == 2 ? parts[1] : entry
                if parts.count == 2, parts[0].isEmpty {
                    out.append(gateway.diagnostic("\(path).hosts[\(hostIndex)]", "empty namespace in \"\(entry)\""))
                }
                if let problem = HostName.problem(host) {
                    out.append(gateway.diagnostic("\(path).hosts[\(hostIndex)]", problem))
                }
            }
            if let bind = server.bind, !HostName.isIPAddress(bind) {
                out.append(gateway.diagnostic("\(path).bind", "expected an IP address, got \"\(bind)\""))
            }
            switch proto {
            case .HTTP, .HTTP2, .GRPC, .GRPC_WEB:
                if let tls = server.tls, tls != GatewaySpec.ServerTLSSettings(httpsRedirect: tls.httpsRedirect) {
                    out.append(gateway.diagnostic("\(path).tls",
                        "a plain \(proto.rawValue) server only allows tls.httpsRedirect; use protocol HTTPS to terminate TLS"))
                }
                if proto != .HTTP {
                    out.append(gateway.diagnostic("\(path).port.protocol",
                        "\(proto.rawValue) is served as HTTP/1.1 for now (h2c is not supported yet)", severity: .warning))
                }
            case .HTTPS, .TLS, .TCP, .MONGO:
                out.append(gateway.diagnostic("\(path).port.protocol",
                    "protocol \(proto.rawValue) is not supported by this version of Gatehouse yet (HTTP only)"))
            }
        }
        return out
    }

    /// Servers sharing a port must agree on being plain HTTP, as one listener serves them all.
    static func checkPortConflicts(_ gateways: [Resource<GatewaySpec>]) -> [Diagnostic] {
        var firstByPort: [UInt32: (plain: Bool, label: String)] = [:]
        var out: [Diagnostic] = []
        for gateway in gateways {
            for (index, server) in (gateway.spec.servers ?? []).enumerated() {
                guard let proto = ServerProtocol(istio: server.port.protocol) else { continue }
                let port = server.port.number
                if let first = firstByPort[port], first.plain != proto.isPlainHTTP {
                    out.append(gateway.diagnostic("spec.servers[\(index)].port",
                        "port \(port) is already used by \(first.label) with an incompatible protocol"))
                } else if firstByPort[port] == nil {
                    firstByPort[port] = (proto.isPlainHTTP, gateway.label)
                }
            }
        }
        return out
    }
}
