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

            case .HTTPS:
                out += checkTermination(server.tls, path: "\(path).tls", in: gateway)
            case .TLS, .TCP, .MONGO:
                out.append(gateway.diagnostic("\(path).port.protocol",
                    "protocol \(proto.rawValue) is not supported by this version of Gatehouse yet (HTTP and HTTPS only)"))
            }
        }
        return out
    }

    /// An HTTPS server's `tls` block: a mode this build terminates, one certificate source, a CA for
    /// client certificates when they are verified, and no client checks it would silently skip.
    static func checkTermination(_ tls: GatewaySpec.ServerTLSSettings?, path: String,
                                 in gateway: Resource<GatewaySpec>) -> [Diagnostic] {
        guard let tls else { return [gateway.diagnostic(path, "an HTTPS server needs a tls block")] }
        var out: [Diagnostic] = []
        switch tls.mode {
        case nil, .PASSTHROUGH?:
            let detail = tls.mode == nil ? "tls.mode is unset, and Istio's default is PASSTHROUGH, " : "PASSTHROUGH "
            out.append(gateway.diagnostic(tls.mode == nil ? path : "\(path).mode",
                "\(detail)which this version does not serve yet; set mode: SIMPLE or MUTUAL to terminate TLS here"))
            return out
        case .AUTO_PASSTHROUGH?, .ISTIO_MUTUAL?:
            out.append(gateway.diagnostic("\(path).mode", "mode \(tls.mode!.rawValue) is not supported (SIMPLE, MUTUAL and OPTIONAL_MUTUAL are)"))
            return out
        case .SIMPLE?, .MUTUAL?, .OPTIONAL_MUTUAL?:
            break
        }
        let hasFiles = tls.serverCertificate != nil || tls.privateKey != nil
        let hasCredential = tls.credentialName != nil || !(tls.credentialNames ?? []).isEmpty
        if hasFiles && hasCredential {
            out.append(gateway.diagnostic("\(path).credentialName", "set credentialName or serverCertificate/privateKey, not both"))
        } else if !hasFiles && !hasCredential {
            out.append(gateway.diagnostic(path, "mode \(tls.mode!.rawValue) needs credentialName or serverCertificate and privateKey"))
        } else if hasFiles {
            if tls.serverCertificate == nil { out.append(gateway.diagnostic("\(path).serverCertificate", "required with privateKey")) }
            if tls.privateKey == nil { out.append(gateway.diagnostic("\(path).privateKey", "required with serverCertificate")) }
        }
        if let names = tls.credentialNames, names.count > 1 {
            out.append(gateway.diagnostic("\(path).credentialNames", "only one credential is supported (one certificate per server)"))
        }
        if tls.mode != .SIMPLE, tls.caCertificates == nil, !hasCredential {
            out.append(gateway.diagnostic("\(path).caCertificates",
                "mode \(tls.mode!.rawValue) verifies client certificates: it needs caCertificates (or a credentialName with ca.crt)"))
        }
        if let min = tls.minProtocolVersion, let max = tls.maxProtocolVersion, min != .TLS_AUTO, max != .TLS_AUTO,
           min.rank > max.rank {
            out.append(gateway.diagnostic("\(path).maxProtocolVersion", "\(max.rawValue) is below minProtocolVersion \(min.rawValue)"))
        }
        // Client checks Istio would enforce: accepting the config without them would admit clients Istio refuses.
        for (field, present) in [("verifyCertificateSpki", tls.verifyCertificateSpki != nil),
                                 ("verifyCertificateHash", tls.verifyCertificateHash != nil), ("caCrl", tls.caCrl != nil)]
        where present {
            out.append(gateway.diagnostic("\(path).\(field)", "\(field) is not supported yet"))
        }
        if tls.mode == .SIMPLE, tls.subjectAltNames != nil {
            out.append(gateway.diagnostic("\(path).subjectAltNames", "subjectAltNames checks client certificates: it needs mode MUTUAL or OPTIONAL_MUTUAL",
                                          severity: .warning))
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
