import Foundation
import GatehouseHTTP1
import GatehouseSecurity
import GatehouseSnapshot
import GatehouseTelemetry
import NIOCore

/// RequestAuthentication then AuthorizationPolicy, in Envoy's filter order (jwt_authn before rbac, both
/// before the router): a refused request gets its 401 or 403 whether or not a route would match.
struct RequestSecurity {
    /// Header edits for the upstream request (tokens stripped, claims written), when any rule applies.
    var headerChanges: HeaderChanges?
    /// The verified JWT, when RequestAuthentication accepted one.
    private(set) var identity: JWTIdentity?
    /// The request's attributes as policies see them, built once for authorization and rate limits.
    private var attributes: AuthorizationRequest?

    /// nil when the request may go on; otherwise the reply that refuses it.
    mutating func check(head: RequestHead, target: RequestTarget, scheme: String, origin: DownstreamOrigin,
                        listener: Listener, snapshot: Snapshot, keys: any JWKSProvider, tokenCache: VerifiedTokenCache?,
                        counters: DecisionCounters?,
                        record: inout AccessLogRecord, observer: DispatchObserver? = nil,
                        now: Date = Date()) -> LocalReply? {
        let authentication = snapshot.authentication
        let engine = listener.authorization
        if authentication.isEmpty, engine.isEmpty { return nil }
        // Boxed once: both steps take the same existential.
        let headers: any HeaderValues = HeaderBlockLookup(headers: head.headers)
        if !authentication.isEmpty {
            // Cached verifications hold for one snapshot, one generation of fetched keys, and a minute.
            let epoch = snapshot.version &* 1_000_003 &+ keys.generation &* 7_919 &+ Int(now.timeIntervalSince1970 / 60)
            let result = authentication.authenticate(headers: headers, query: target.query, keys: keys, now: now,
                                                     cache: tokenCache, epoch: epoch)
            observer?.authentication = result
            switch result {
            case .anonymous:
                if !authentication.outputHeaders.isEmpty { headerChanges = HeaderChanges(remove: authentication.outputHeaders) }
            case .authenticated(let verified, let changes, _):
                identity = verified
                headerChanges = changes
                record.requestPrincipal = verified.principal
                counters?.recordAuthenticated()
            case .failed(let failure):
                counters?.recordAuthenticationFailure(failure.responseCodeDetails)
                let realm = "\(scheme)://\(target.authority)\(target.path)"
                return .jwtRefused(failure, realm: realm)
            }
        }
        guard !engine.isEmpty else { return nil }
        let request = attributes(head: head, target: target, origin: origin, snapshot: snapshot, headers: headers)
        let decision = engine.evaluate(request, observe: observer.map { observer in { observer.rules.append(($0, $1)) } })
        observer?.decision = decision
        record.authzPolicy = decision.logName
        if let counters { Self.count(decision, in: counters) }
        return decision.allowed ? nil : .rbacDenied(details: decision.responseCodeDetails)
    }

    /// The request's attributes for policy rules (AuthorizationPolicy, a RateLimitPolicy's `match`), with
    /// the JWT identity `check` found; built on first use.
    mutating func attributes(head: RequestHead, target: RequestTarget, origin: DownstreamOrigin, snapshot: Snapshot,
                             headers: (any HeaderValues)? = nil) -> AuthorizationRequest {
        if let attributes { return attributes }
        let sourceIP = origin.clientAddress ?? origin.clientIP.flatMap { IPAddress($0) }
        let request = AuthorizationRequest(
            method: head.method, path: target.path, host: target.authority, port: origin.listenerPort,
            headers: headers ?? HeaderBlockLookup(headers: head.headers),
            sourceIP: sourceIP,
            remoteIP: snapshot.settings.numTrustedProxies == 0 ? sourceIP
                : Self.remoteIP(forwardedFor: head.headers.values("x-forwarded-for"), peer: sourceIP,
                                trustedHops: snapshot.settings.numTrustedProxies),
            destinationIP: origin.localAddress ?? origin.localIP.flatMap { IPAddress($0) }, serverName: origin.tls?.serverName,
            peerPrincipal: origin.tls?.peerPrincipal, jwt: identity)
        attributes = request
        return request
    }

    /// Stands for "no ALLOW rule matched" in the decision counters, which key on the deciding rule.
    final class DefaultDeny: Sendable {}
    static let defaultDeny = DefaultDeny()

    /// Counts the decision under the rule that made it (and the AUDIT rule that marked it).
    static func count(_ decision: AuthorizationDecision, in counters: DecisionCounters) {
        if let audit = decision.audit {
            counters.recordDecision(owner: audit, policy: audit.policy, action: "AUDIT", allowed: decision.allowed)
        }
        if let rule = decision.rule {
            counters.recordDecision(owner: rule, policy: rule.policy, action: rule.action.rawValue, allowed: decision.allowed)
        } else if decision.reason == .noAllowMatched {
            counters.recordDecision(owner: defaultDeny, policy: "default-deny", action: "ALLOW", allowed: false)
        }
    }

    /// Envoy's `xff_num_trusted_hops`: with N trusted proxies in front, the client is the Nth address
    /// from the right of X-Forwarded-For. With none, or too few entries, it is the peer itself.
    static func remoteIP(forwardedFor values: [String], peer: IPAddress?, trustedHops: Int) -> IPAddress? {
        guard trustedHops > 0, !values.isEmpty else { return peer }
        let entries = values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard entries.count >= trustedHops else { return peer }
        return IPAddress(entries[entries.count - trustedHops]) ?? peer
    }
}

extension HeaderBlockLookup: HeaderValues {
    func containsValue(_ name: String, where test: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        headers.containsValue(name, where: test)
    }
}

extension LocalReply {
    static func rbacDenied(details: String) -> LocalReply {
        LocalReply(status: 403, body: Array("RBAC: access denied".utf8), flag: [], details: details)
    }

    /// Envoy's jwt_authn refusal: its status message as the body, and a bearer challenge.
    static func jwtRefused(_ failure: JWTFailure, realm: String) -> LocalReply {
        LocalReply(status: 401, body: Array(failure.rawValue.utf8), flag: [], details: failure.responseCodeDetails,
                   extraHeaders: [("www-authenticate", "Bearer realm=\"\(realm)\", error=\"invalid_token\"")])
    }
}
