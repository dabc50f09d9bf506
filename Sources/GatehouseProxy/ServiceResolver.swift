import Foundation
import GatehouseDNS
import GatehouseSnapshot
import NIOCore
import NIOPosix
import Synchronization

/// Resolves Kubernetes service names through DNS (the Bootstrap's `dns.resolvers`, else the nameservers
/// of /etc/resolv.conf) and keeps each answer for its TTL (`ResolutionCache`). Only the first request for
/// a name waits; later ones use the cached addresses, and an expired entry is refreshed in the background
/// while the old addresses keep serving. Queries are UDP from a fresh socket (a random source port) with
/// a random id, and a reply must echo both the id and the question.
final class ServiceResolver: Sendable {
    /// Keyed by `name|port`: the socket addresses are built once per answer, not per request.
    private let cache = Mutex(ResolutionCache<SocketAddress, EventLoopPromise<[SocketAddress]>>())
    private let systemResolvers: [ResolverAddress]
    /// One try per resolver takes this long at most; each resolver is tried twice.
    private let attemptTimeout: TimeAmount = .seconds(1)

    init(resolvConf: String = "/etc/resolv.conf") {
        let text = (try? String(contentsOfFile: resolvConf, encoding: .utf8)) ?? ""
        systemResolvers = ResolverAddress.fromResolvConf(text)
    }

    /// `configured`: the snapshot's `dns.resolvers` (empty: the system's), read only when a query is due.
    func resolve(name: String, port: Int, configured: @autoclosure () -> [ResolverAddress],
                 on eventLoop: EventLoop) -> EventLoopFuture<[SocketAddress]> {
        let key = "\(name)|\(port)"
        // The promise is only needed when the caller has to wait; a cache hit allocates none.
        var promise: EventLoopPromise<[SocketAddress]>?
        let now = NIODeadline.now().uptimeNanoseconds
        let step = cache.withLock { cache in
            cache.lookup(key, now: now) {
                let waiting = eventLoop.makePromise(of: [SocketAddress].self)
                promise = waiting
                return waiting
            }
        }
        func resolvers() -> [ResolverAddress] {
            let listed = configured()
            return listed.isEmpty ? systemResolvers : listed
        }
        switch step {
        case .use(let addresses):
            return eventLoop.makeSucceededFuture(addresses)
        case .useAndRefresh(let addresses):
            query(name, port: port, key: key, resolvers: resolvers(), on: eventLoop)
            return eventLoop.makeSucceededFuture(addresses)
        case .wait:
            break
        case .waitAndQuery:
            query(name, port: port, key: key, resolvers: resolvers(), on: eventLoop)
        case .fail(let reason):
            return eventLoop.makeFailedFuture(ResolutionFailure(name: name, reason: reason))
        }
        return promise!.futureResult
    }

    private func query(_ name: String, port: Int, key: String, resolvers: [ResolverAddress], on eventLoop: EventLoop) {
        // IPv4 first (Istio's V4_PREFERRED), IPv6 when the name has no IPv4 address.
        ask(name, type: .a, resolvers: resolvers, on: eventLoop).flatMap { result -> EventLoopFuture<Result<DNSAnswer, DNSFailure>> in
            if case .failure(.noRecords) = result { return self.ask(name, type: .aaaa, resolvers: resolvers, on: eventLoop) }
            return eventLoop.makeSucceededFuture(result)
        }.whenSuccess { result in
            let addresses = result.map { answer in
                (addresses: answer.addresses.compactMap { try? SocketAddress(ipAddress: $0.description, port: port) }, ttl: answer.ttl)
            }
            let (waiters, outcome) = self.cache.withLock { $0.finished(key, addresses, now: NIODeadline.now().uptimeNanoseconds) }
            for waiter in waiters { waiter.completeWith(outcome.mapError { $0 as Error }) }
        }
    }

    /// Tries each resolver twice, in order, until one gives an answer: NXDOMAIN or "no records" from a
    /// resolver is the answer; a timeout, a garbled reply or SERVFAIL/REFUSED moves on to the next try.
    private func ask(_ name: String, type: DNSRecordType, resolvers: [ResolverAddress],
                     on eventLoop: EventLoop) -> EventLoopFuture<Result<DNSAnswer, DNSFailure>> {
        let attempts = resolvers.flatMap { [$0, $0] }
        @Sendable func attempt(_ index: Int, after last: DNSFailure?) -> EventLoopFuture<Result<DNSAnswer, DNSFailure>> {
            guard index < attempts.count else {
                return eventLoop.makeSucceededFuture(.failure(last ?? .noResolver))
            }
            let question = DNSQuestion(id: UInt16.random(in: 0...UInt16.max), name: name, type: type)
            return exchange(question, with: attempts[index], on: eventLoop).flatMap { result in
                switch result {
                case .failure(let failure) where failure.isWorthAnotherTry: attempt(index + 1, after: failure)
                default: eventLoop.makeSucceededFuture(result)
                }
            }
        }
        return attempt(0, after: nil)
    }

    private func exchange(_ question: DNSQuestion, with resolver: ResolverAddress,
                          on eventLoop: EventLoop) -> EventLoopFuture<Result<DNSAnswer, DNSFailure>> {
        guard let query = question.encoded(),
              let address = try? SocketAddress(ipAddress: resolver.host, port: resolver.port) else {
            return eventLoop.makeSucceededFuture(.failure(.malformed("cannot ask \(resolver) for \(question.name)")))
        }
        let promise = eventLoop.makePromise(of: Result<DNSAnswer, DNSFailure>.self)
        let timeout = attemptTimeout
        DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSReplyHandler(question: question, resolver: address,
                                                                                   promise: promise))
                }
            }
            .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .whenComplete { bound in
                switch bound {
                case .failure(let error):
                    promise.succeed(.failure(.unreachable("cannot open a UDP socket: \(error)")))
                case .success(let channel):
                    let timer = eventLoop.scheduleTask(in: timeout) { promise.succeed(.failure(.timedOut)) }
                    var buffer = channel.allocator.buffer(capacity: query.count)
                    buffer.writeBytes(query)
                    channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
                    promise.futureResult.whenComplete { _ in
                        timer.cancel()
                        channel.close(promise: nil)
                    }
                }
            }
        return promise.futureResult
    }
}

/// Completes the exchange with the first reply from the resolver that answers our question; anything
/// else arriving on the socket (another source, another id) is dropped.
private final class DNSReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let question: DNSQuestion
    let resolver: SocketAddress
    let promise: EventLoopPromise<Result<DNSAnswer, DNSFailure>>

    init(question: DNSQuestion, resolver: SocketAddress, promise: EventLoopPromise<Result<DNSAnswer, DNSFailure>>) {
        self.question = question
        self.resolver = resolver
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == resolver else { return }
        let result = question.answer(from: Array(envelope.data.readableBytesView))
        if case .failure(.notOurs) = result { return }
        promise.succeed(result)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP port unreachable and the like: this resolver will not answer; the timer moves on.
    }
}

extension DNSFailure {
    /// A timeout, a garbled reply or SERVFAIL/REFUSED says nothing about the name: ask again.
    var isWorthAnotherTry: Bool {
        switch self {
        case .timedOut, .malformed, .serverFailure, .unreachable: true
        case .nameError, .noRecords, .notOurs, .noResolver: false
        }
    }
}

extension GatewaySettings {
    /// `dnsResolvers` parsed (validation refused any that do not parse).
    var resolverAddresses: [ResolverAddress] { dnsResolvers.compactMap(ResolverAddress.init) }
}
