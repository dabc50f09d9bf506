/// Istio's checks on a DestinationRule `tls` block (`ClientTLSSettings`), and the fields that would go
/// unused in the mode chosen: with fail-closed config, a certificate the gateway would never present or a
/// CA it would never check against is an error, not a silent no-op.
enum ClientTLSChecks {
    static func check(_ tls: ClientTLSSettings, _ path: String, _ rule: Resource<DestinationRuleSpec>,
                      hasMeshIdentity: Bool) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let mode = tls.mode ?? .DISABLE
        func unused(_ present: Bool, _ field: String, _ why: String) {
            if present { out.append(rule.diagnostic("\(path).\(field)", why)) }
        }
        switch mode {
        case .DISABLE:
            for (field, present) in [("clientCertificate", tls.clientCertificate != nil), ("privateKey", tls.privateKey != nil),
                                     ("caCertificates", tls.caCertificates != nil), ("credentialName", tls.credentialName != nil),
                                     ("subjectAltNames", tls.subjectAltNames != nil), ("sni", tls.sni != nil),
                                     ("insecureSkipVerify", tls.insecureSkipVerify != nil)] {
                unused(present, field, "not used with mode DISABLE (plaintext); set mode SIMPLE, MUTUAL or ISTIO_MUTUAL, or remove it")
            }
        case .ISTIO_MUTUAL:
            // Istio's own rule: the mesh identity is the client certificate, and the mesh root the CA.
            for (field, present) in [("clientCertificate", tls.clientCertificate != nil), ("privateKey", tls.privateKey != nil),
                                     ("caCertificates", tls.caCertificates != nil), ("credentialName", tls.credentialName != nil)] {
                unused(present, field, "cannot be set with mode ISTIO_MUTUAL, which uses the gateway's mesh identity "
                    + "(Bootstrap spec.identity) and the mesh root")
            }
            if !hasMeshIdentity {
                out.append(rule.diagnostic("\(path).mode", "ISTIO_MUTUAL needs the gateway's mesh identity: set Bootstrap "
                    + "spec.identity {certChain, privateKey, rootCert, trustDomain}"))
            }
        case .SIMPLE:
            unused(tls.clientCertificate != nil, "clientCertificate", "a client certificate is only presented with mode MUTUAL")
            unused(tls.privateKey != nil, "privateKey", "a client key is only used with mode MUTUAL")
            if tls.credentialName != nil, tls.caCertificates != nil {
                out.append(rule.diagnostic("\(path).caCertificates", "credentialName and caCertificates are alternatives: set one"))
            }
        case .MUTUAL:
            if tls.credentialName != nil {
                for (field, present) in [("clientCertificate", tls.clientCertificate != nil), ("privateKey", tls.privateKey != nil),
                                         ("caCertificates", tls.caCertificates != nil)] {
                    unused(present, field, "credentialName and \(field) are alternatives: set one")
                }
            } else {
                if tls.clientCertificate?.isEmpty != false {
                    out.append(rule.diagnostic("\(path).clientCertificate", "client certificate required for mutual tls"))
                }
                if tls.privateKey?.isEmpty != false {
                    out.append(rule.diagnostic("\(path).privateKey", "private key required for mutual tls"))
                }
            }
        }
        if let sni = tls.sni {
            if sni.isEmpty || HostName.isIPAddress(sni) || HostName.problem(sni, allowWildcard: false) != nil {
                out.append(rule.diagnostic("\(path).sni", "\"\(sni)\" is not a DNS name a TLS client may send as SNI"))
            }
        }
        for (index, name) in (tls.subjectAltNames ?? []).enumerated() where name.isEmpty {
            out.append(rule.diagnostic("\(path).subjectAltNames[\(index)]", "must not be empty"))
        }
        if tls.insecureSkipVerify == true, mode != .DISABLE, tls.caCertificates != nil || tls.subjectAltNames != nil {
            out.append(rule.diagnostic("\(path).insecureSkipVerify",
                "insecureSkipVerify turns off the checks caCertificates and subjectAltNames ask for: set one or the other"))
        }
        out += ConfigValidator.notSupported(tls.caCrl != nil, "\(path).caCrl", rule, "tls.caCrl")
        return out
    }
}
