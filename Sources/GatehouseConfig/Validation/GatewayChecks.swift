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
            if server.defaultEndpoint != nil {
                out.append(gateway.diagnostic("\(path).defaultEndpoint", "defaultEndpoint configures a sidecar's "
                    + "inbound listener; Istio ignores it on a gateway, and so does Gatehouse", severity: .warning))
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
            if server.port.targetPort != nil {
                out.append(gateway.diagnostic("\(path).port.targetPort", "targetPort has no effect on a Gateway server "
                    + "(Istio ignores it too): the gateway listens on port.number", severity: .warning))
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

            case .HTTPS, .TLS:
                let mode = server.tls?.mode ?? .PASSTHROUGH
                if mode == .PASSTHROUGH {
                    if server.tls?.mode == nil {
                        out.append(gateway.diagnostic(server.tls == nil ? path : "\(path).tls",
                            "tls.mode is unset, so Istio's default PASSTHROUGH applies: connections are routed by SNI "
                                + "with tls routes and never decrypted (set mode: SIMPLE to terminate TLS here)",
                            severity: .warning))
                    }
                } else if proto == .TLS {
                    out.append(gateway.diagnostic("\(path).tls.mode",
                        "a TLS server that terminates (\(mode.rawValue)) then relays TCP is not supported yet; use PASSTHROUGH, or protocol HTTPS"))
                } else {
                    out += checkTermination(server.tls, path: "\(path).tls", in: gateway)
                }
            case .TCP:
                // Istio treats a non-HTTP server with tls as a TLS server; relaying its bytes raw would
                // skip the TLS it asked for.
                if server.tls != nil {
                    out.append(gateway.diagnostic("\(path).tls", "tls on a TCP server (Istio terminates or passes TLS "
                        + "through on it) is not supported yet; use protocol TLS with mode PASSTHROUGH, or HTTPS"))
                }
            case .MONGO:
                out.append(gateway.diagnostic("\(path).port.protocol",
                    "protocol MONGO is not supported; use TCP to relay it"))
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
            return out  // relayed by SNI (checked by the caller)
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
        out += ConfigValidator.notSupported(tls.tlsCertificates != nil, "\(path).tlsCertificates", gateway, "tlsCertificates")
        if tls.mode == .SIMPLE, tls.subjectAltNames != nil {
            out.append(gateway.diagnostic("\(path).subjectAltNames", "subjectAltNames checks client certificates: it needs mode MUTUAL or OPTIONAL_MUTUAL",
                                          severity: .warning))
        }
        return out
    }

    /// How a port's connections are served: one listener serves all servers on a port, so they must
    /// agree (plain HTTP, TLS termination, SNI passthrough, or TCP).
    static func family(_ proto: ServerProtocol, _ tls: GatewaySpec.ServerTLSSettings?) -> String {
        switch proto {
        case .HTTP, .HTTP2, .GRPC, .GRPC_WEB: return "plain HTTP"
        case .HTTPS, .TLS: return (tls?.mode ?? .PASSTHROUGH) == .PASSTHROUGH ? "TLS passthrough" : "TLS termination"
        case .TCP, .MONGO: return "TCP"
        }
    }

    static func checkPortConflicts(_ gateways: [Resource<GatewaySpec>]) -> [Diagnostic] {
        var firstByPort: [UInt32: (family: String, label: String)] = [:]
        var bindByPort: [UInt32: (bind: String, label: String)] = [:]
        var out: [Diagnostic] = []
        for gateway in gateways {
            for (index, server) in (gateway.spec.servers ?? []).enumerated() {
                guard let proto = ServerProtocol(istio: server.port.protocol) else { continue }
                let port = server.port.number
                // One listener per port serves every server on it, so they must bind the same address.
                if let bind = server.bind {
                    if let first = bindByPort[port], first.bind != bind {
                        out.append(gateway.diagnostic("spec.servers[\(index)].bind", "port \(port) is bound to \(first.bind) "
                            + "by \(first.label); one listener serves every server on a port, so it cannot also bind \(bind)"))
                    } else if bindByPort[port] == nil {
                        bindByPort[port] = (bind, gateway.label)
                    }
                }
                let family = family(proto, server.tls)
                if let first = firstByPort[port], first.family != family {
                    out.append(gateway.diagnostic("spec.servers[\(index)].port",
                        "port \(port) is already used by \(first.label) for \(first.family), not \(family)"))
                } else if firstByPort[port] == nil {
                    firstByPort[port] = (family, gateway.label)
                }
            }
        }
        return out
    }
}
