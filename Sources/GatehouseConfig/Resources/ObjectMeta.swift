/// Kubernetes-style metadata. Server-populated fields found in exported YAML (uid, resourceVersion…) are
/// accepted and ignored, so `kubectl get -o yaml` output loads as it is.
public struct ObjectMeta: Decodable, Sendable, Hashable {
    public var name: String
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    var uid: UninterpretedValue?
    var resourceVersion: UninterpretedValue?
    var generation: UninterpretedValue?
    var creationTimestamp: UninterpretedValue?
    var managedFields: UninterpretedValue?
    var finalizers: UninterpretedValue?
    var ownerReferences: UninterpretedValue?
}

/// The envelope every document shares. `status` is accepted (exports carry it) and ignored.
struct ResourceEnvelope<Spec: Decodable>: Decodable {
    var apiVersion: String
    var kind: String
    var metadata: ObjectMeta
    var spec: Spec?
    var status: UninterpretedValue?
}
