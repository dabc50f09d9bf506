/// security.istio.io AuthorizationPolicy (istio/api security/v1beta1/authorization.proto).
public struct AuthorizationPolicySpec: Decodable, Sendable, Hashable {
    public var selector: WorkloadSelector?
    public var targetRef: PolicyTargetReference?
    public var targetRefs: [PolicyTargetReference]?
    public var rules: [Rule]?
    public var action: Action?
    public var provider: Provider?

    public enum Action: String, ConfigEnum { case ALLOW, DENY, AUDIT, CUSTOM }

    public struct Provider: Decodable, Sendable, Hashable {
        public var name: String?
    }

    public struct Rule: Decodable, Sendable, Hashable {
        public var from: [From]?
        public var to: [To]?
        public var when: [Condition]?
    }

    public struct From: Decodable, Sendable, Hashable {
        public var source: Source?
    }

    public struct To: Decodable, Sendable, Hashable {
        public var operation: Operation?
    }

    public struct Source: Decodable, Sendable, Hashable {
        public var principals: [String]?
        public var notPrincipals: [String]?
        public var requestPrincipals: [String]?
        public var notRequestPrincipals: [String]?
        public var namespaces: [String]?
        public var notNamespaces: [String]?
        public var serviceAccounts: [String]?
        public var notServiceAccounts: [String]?
        public var ipBlocks: [String]?
        public var notIpBlocks: [String]?
        public var remoteIpBlocks: [String]?
        public var notRemoteIpBlocks: [String]?
        /// The trust domain of the peer's SPIFFE identity (mTLS).
        public var trustDomains: [String]?
        public var notTrustDomains: [String]?

        public var isEmpty: Bool { self == Source() }
    }

    public struct Operation: Decodable, Sendable, Hashable {
        public var hosts: [String]?
        public var notHosts: [String]?
        public var ports: [String]?
        public var notPorts: [String]?
        public var methods: [String]?
        public var notMethods: [String]?
        public var paths: [String]?
        public var notPaths: [String]?

        public var isEmpty: Bool { self == Operation() }
    }

    public struct Condition: Decodable, Sendable, Hashable {
        public var key: String
        public var values: [String]?
        public var notValues: [String]?
    }
}

/// `selector: {matchLabels: …}`, shared by the security resources.
public struct WorkloadSelector: Decodable, Sendable, Hashable {
    public var matchLabels: [String: String]?
}

/// `targetRef`/`targetRefs`: a Gateway API resource the policy attaches to.
public struct PolicyTargetReference: Decodable, Sendable, Hashable {
    public var group: String?
    public var kind: String
    public var name: String
    public var namespace: String?
}

/// security.istio.io RequestAuthentication (istio/api security/v1beta1/request_authentication.proto).
public struct RequestAuthenticationSpec: Decodable, Sendable, Hashable {
    public var selector: WorkloadSelector?
    public var targetRef: PolicyTargetReference?
    public var targetRefs: [PolicyTargetReference]?
    public var jwtRules: [JWTRule]?

    public struct JWTRule: Decodable, Sendable, Hashable {
        public var issuer: String
        public var audiences: [String]?
        public var jwksUri: String?
        public var jwks: String?
        public var fromHeaders: [JWTHeader]?
        public var fromParams: [String]?
        public var fromCookies: [String]?
        public var outputPayloadToHeader: String?
        public var forwardOriginalToken: Bool?
        public var outputClaimToHeaders: [ClaimToHeader]?
        public var timeout: ConfigDuration?
        public var spaceDelimitedClaims: [String]?
    }

    public struct JWTHeader: Decodable, Sendable, Hashable {
        public var name: String
        public var prefix: String?
    }

    public struct ClaimToHeader: Decodable, Sendable, Hashable {
        public var header: String
        public var claim: String
    }
}
