import Foundation

/// Reads config files and directories into a `ConfigSet`, collecting every problem as a `Diagnostic`.
public enum ConfigLoader {
    /// Loads and validates. The config is usable only when no diagnostic is an error.
    public static func load(paths: [String]) -> (ConfigSet, [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        var set = ConfigSet()
        for file in expand(paths: paths, diagnostics: &diagnostics) {
            set.files.append(file)
            if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int,
               size > YAMLLimits.maxFileBytes {
                diagnostics.append(Diagnostic(location: .init(file: file, line: 1, column: 1), resource: "file", path: "",
                                              message: "file is \(size) bytes, more than the \(YAMLLimits.maxFileBytes) a config file may have"))
                continue
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                diagnostics.append(Diagnostic(location: .init(file: file, line: 1, column: 1), resource: "file",
                                              path: "", message: "cannot read file"))
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                diagnostics.append(Diagnostic(location: .init(file: file, line: 1, column: 1), resource: "file",
                                              path: "", message: "file is not UTF-8 text"))
                continue
            }
            load(text: text, file: file, into: &set, diagnostics: &diagnostics)
        }
        diagnostics += ConfigValidator.validate(set)
        return (set, diagnostics)
    }

    /// Decodes the documents of one file (exposed for tests that load YAML from strings).
    public static func load(text: String, file: String, into set: inout ConfigSet, diagnostics: inout [Diagnostic]) {
        let directory = (file as NSString).deletingLastPathComponent
        guard text.utf8.count <= YAMLLimits.maxFileBytes else {
            diagnostics.append(Diagnostic(location: .init(file: file, line: 1, column: 1), resource: "file", path: "",
                                          message: "file is more than the \(YAMLLimits.maxFileBytes) bytes a config file may have"))
            return
        }
        // Documents before a problem are still decoded, so one run reports their problems too; the
        // problem itself is an error, so the config as a whole is refused.
        let (documents, failure) = YAMLComposer.compose(text)
        for root in documents {
            decodeDocument(root, file: file, directory: directory, into: &set, diagnostics: &diagnostics)
        }
        if let failure {
            diagnostics.append(Diagnostic(location: .init(file: file, line: failure.line, column: failure.column),
                                          resource: "YAML", path: "", message: failure.message))
        }
    }

    /// The files `load(paths:)` reads (for the config watcher); missing paths are left out.
    public static func files(in paths: [String]) -> [String] {
        var ignored: [Diagnostic] = []
        return expand(paths: paths, diagnostics: &ignored)
    }

    static func expand(paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.append(Diagnostic(location: .init(file: path, line: 0, column: 0), resource: "file",
                                              path: "", message: "no such file or directory"))
                continue
            }
            guard isDirectory.boolValue else { files.append(path); continue }
            let entries = (try? manager.contentsOfDirectory(atPath: path)) ?? []
            // Sorted so the order of merged routes across files is stable from one load to the next.
            for entry in entries.sorted() where entry.hasSuffix(".yaml") || entry.hasSuffix(".yml") {
                guard !entry.hasPrefix(".") else { continue }
                files.append((path as NSString).appendingPathComponent(entry))
            }
        }
        return files
    }

    static func decodeDocument(_ root: YAMLNode, file: String, directory: String, into set: inout ConfigSet,
                               diagnostics: inout [Diagnostic]) {
        let here = SourceLocation(file: file, line: root.line, column: root.column)
        if case .null = root.value { return }  // an empty document between `---` separators
        guard case .mapping = root.value else {
            diagnostics.append(Diagnostic(location: here, resource: "YAML", path: "",
                                          message: "expected a Kubernetes-style resource (a mapping), got \(root.kindName)"))
            return
        }
        let kindText = root["kind"]?.string ?? ""
        let name = root["metadata"]?["name"]?.string ?? "?"
        let namespace = root["metadata"]?["namespace"]?.string ?? "default"
        let label = "\(kindText.isEmpty ? "?" : kindText) \(namespace)/\(name)"
        switch ForeignResource.classify(apiVersion: root["apiVersion"]?.string ?? "", kind: kindText, root) {
        case .skip:
            set.skippedKubernetes[kindText.isEmpty ? "?" : kindText, default: 0] += 1
            return
        case .refuse(let message):
            diagnostics.append(Diagnostic(location: here, resource: label, path: "kind", message: message))
            return
        case .istio:
            break
        }
        guard let kind = ResourceKind(rawValue: kindText) else {
            let where_ = root["kind"].map { SourceLocation(file: file, line: $0.line, column: $0.column) } ?? here
            let message = kindText.isEmpty ? "missing required field \"kind\""
                : "unknown kind \"\(kindText)\"\(Suggestion.hint(for: kindText, in: ResourceKind.allCases.map(\.rawValue)))"
            diagnostics.append(Diagnostic(location: where_, resource: label, path: "kind", message: message))
            return
        }
        if let apiVersion = root["apiVersion"]?.string, !kind.apiVersions.contains(apiVersion) {
            let node = root["apiVersion"]!
            diagnostics.append(Diagnostic(location: .init(file: file, line: node.line, column: node.column),
                                          resource: label, path: "apiVersion",
                                          message: "apiVersion \"\(apiVersion)\" is not valid for \(kindText); expected one of "
                                              + kind.apiVersions.joined(separator: ", ")))
            return
        }
        if let reason = kind.notApplicableReason {
            set.notApplicable.append(InapplicableResource(label: label, location: here, reason: reason))
            return
        }
        guard kind.isSupported else {
            diagnostics.append(Diagnostic(location: here, resource: label, path: "kind",
                                          message: "\(kindText) is not supported by this version of Gatehouse; "
                                              + "refusing to load a configuration it would not enforce"))
            return
        }
        switch kind {
        case .Bootstrap:
            guard let resource = decode(BootstrapSpec.self, kind, root, file, directory, &set, &diagnostics) else { return }
            if let existing = set.bootstrap {
                diagnostics.append(resource.diagnostic("metadata.name",
                    "only one Bootstrap is allowed; another is defined at \(existing.positions.location(of: ""))"))
            } else {
                set.bootstrap = resource
            }
        case .Gateway:
            decode(GatewaySpec.self, kind, root, file, directory, &set, &diagnostics).map { set.gateways.append($0) }
        case .VirtualService:
            decode(VirtualServiceSpec.self, kind, root, file, directory, &set, &diagnostics).map { set.virtualServices.append($0) }
        case .DestinationRule:
            decode(DestinationRuleSpec.self, kind, root, file, directory, &set, &diagnostics).map { set.destinationRules.append($0) }
        case .ServiceEntry:
            decode(ServiceEntrySpec.self, kind, root, file, directory, &set, &diagnostics).map { set.serviceEntries.append($0) }
        case .WorkloadEntry:
            decode(WorkloadEntrySpec.self, kind, root, file, directory, &set, &diagnostics).map { set.workloadEntries.append($0) }
        case .AuthorizationPolicy:
            decode(AuthorizationPolicySpec.self, kind, root, file, directory, &set, &diagnostics).map { set.authorizationPolicies.append($0) }
        case .RequestAuthentication:
            decode(RequestAuthenticationSpec.self, kind, root, file, directory, &set, &diagnostics).map { set.requestAuthentications.append($0) }
        case .RateLimitPolicy:
            decode(RateLimitPolicySpec.self, kind, root, file, directory, &set, &diagnostics).map { set.rateLimitPolicies.append($0) }
        case .EnvoyFilter:
            decode(EnvoyFilterSpec.self, kind, root, file, directory, &set, &diagnostics).map { set.envoyFilters.append($0) }
        default:
            break
        }
    }

    /// Decodes one resource; its problems go to `diagnostics`. A resource with bad fields is still returned
    /// (flagged) so the validator reports its other problems too; nil only when even its envelope failed.
    static func decode<Spec: Decodable & Sendable>(
        _ type: Spec.Type, _ kind: ResourceKind, _ root: YAMLNode, _ file: String, _ directory: String,
        _ set: inout ConfigSet, _ diagnostics: inout [Diagnostic]
    ) -> Resource<Spec>? {
        let session = DecodeSession()
        let decoder = NodeDecoder(node: root, codingPath: [], session: session)
        var envelope: ResourceEnvelope<Spec>?
        do {
            envelope = try decoder.decodeValue(ResourceEnvelope<Spec>.self)
        } catch let failure as NodeDecodingFailure {
            session.record(failure)
        } catch {
            session.problems.append(.init(path: "", line: root.line, column: root.column, message: "\(error)"))
        }
        session.reportUnknownFields()
        let name = root["metadata"]?["name"]?.string ?? "?"
        let namespace = root["metadata"]?["namespace"]?.string ?? "default"
        let label = "\(kind.rawValue) \(namespace)/\(name)"
        if envelope != nil, envelope?.spec == nil, kind != .Bootstrap {
            session.problems.append(.init(path: "spec", line: root.line, column: root.column,
                                          message: "missing required field \"spec\""))
        }
        for problem in session.problems {
            diagnostics.append(Diagnostic(location: .init(file: file, line: problem.line, column: problem.column),
                                          resource: label, path: problem.path, message: problem.message,
                                          severity: problem.severity))
        }
        if !session.problems.isEmpty { set.brokenNames.insert("\(kind.rawValue) \(namespace)/\(name)") }
        guard let envelope else { return nil }
        let positions = FieldPositions(
            file: file,
            table: session.positions.mapValues { .init(line: $0.line, column: $0.column) },
            documentStart: .init(line: root.line, column: root.column))
        let spec: Spec
        if let decoded = envelope.spec {
            spec = decoded
        } else if let empty = try? NodeDecoder(node: YAMLNode(value: .mapping([]), line: root.line, column: root.column),
                                               codingPath: [], session: DecodeSession()).decodeValue(Spec.self) {
            spec = empty
        } else {
            return nil
        }
        var resource = Resource(kind: kind, name: envelope.metadata.name,
                                namespace: envelope.metadata.namespace ?? "default",
                                labels: envelope.metadata.labels ?? [:], spec: spec, positions: positions,
                                directory: directory)
        resource.hasDecodeErrors = !session.problems.isEmpty
        resource.annotations = envelope.metadata.annotations ?? [:]
        return resource
    }
}
