// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: executable -> proxy -> snapshot -> engines -> config model.
// Engines (routing, regex, config) never import NIO: they are pure and tested without sockets.
let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // X.509 parsing for what NIOSSL does not expose: a client certificate's subject (for
        // x-forwarded-client-cert), and the SPIFFE identities of the upstream side to come.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        // DER encoding for the certificates the identity tests issue (already a dependency of the above).
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        // `gatehouse run` is a ServiceGroup of services, and its diagnostics go through swift-log.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // SQLite for the durable rate-limit store (quotas that survive restarts), over the system's libsqlite3.
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
        ),
        .target(name: "GatehouseRegex", dependencies: ["CPCRE2"]),
        // Authorization and JWT primitives: value matchers, CIDRs, attribute keys, the policy engine and
        // token verification. Pure (no sockets, no clocks but the one passed in).
        .target(
            name: "GatehouseSecurity",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "GatehouseConfig",
            // YAMLComposer reads libyaml's events through Yams's CYaml module, which Yams does not export
            // as a product: it comes with the Yams dependency.
            dependencies: ["GatehouseRegex", "GatehouseDNS", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "GatehouseRouting", dependencies: ["GatehouseRegex", "GatehouseUpstream"]),
        .target(name: "GatehouseTelemetry", dependencies: []),
        // Upstream state machines, pure (no sockets, no clock but the instants passed in): load
        // balancing, circuit-breaker limits, outlier detection and retry decisions.
        .target(name: "GatehouseUpstream", dependencies: []),
        // Rate limits and quotas, pure (no sockets, no clock but the instants passed in): token buckets
        // kept as GCRA instants, calendar-aligned quota periods.
        .target(name: "GatehouseRateLimit", dependencies: []),
        // The `sqlite` rate-limit store: quota counters written behind to a file, restored at start.
        .target(
            name: "GatehouseStateStore",
            dependencies: ["GatehouseRateLimit", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // DNS messages and resolver lists, pure: Kubernetes service names are resolved with TTLs.
        .target(name: "GatehouseDNS", dependencies: []),
        // HTTP/1.1 wire format on raw bytes: pure (no sockets), so it is unit-tested byte for byte.
        .target(name: "GatehouseHTTP1", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "GatehouseSnapshot",
            dependencies: ["GatehouseConfig", "GatehouseRouting", "GatehouseSecurity", "GatehouseRegex", "GatehouseUpstream",
                           "GatehouseRateLimit"]
        ),
        // Certificates and TLS contexts: reads the files a snapshot names, watches them for rotation.
        .target(
            name: "GatehouseIdentity",
            dependencies: [
                "GatehouseSnapshot", "GatehouseConfig",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "GatehouseProxy",
            dependencies: [
                "GatehouseSnapshot", "GatehouseRouting", "GatehouseTelemetry", "GatehouseHTTP1", "GatehouseIdentity",
                "GatehouseRegex", "GatehouseConfig", "GatehouseDNS", "GatehouseSecurity", "GatehouseUpstream",
                "GatehouseRateLimit",
                // SHA-256 of long rate-limit keys.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            // The data plane's state is confined to event loops; dynamic exclusivity checks cost ~2% of
            // a request in the profile and guard nothing the loop confinement does not already.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseProxy", "GatehouseSnapshot", "GatehouseConfig", "GatehouseIdentity", "GatehouseTelemetry",
                "GatehouseStateStore", "GatehouseRateLimit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Times the per-request work (the HTTP/1.1 codec; routing and policy against generated configs of
        // 10 to 10,000 hosts and 1,000 policies) without sockets; run by bench/micro.
        .executableTarget(
            name: "gatehouse-microbench",
            dependencies: [
                "GatehouseProxy", "GatehouseSnapshot", "GatehouseConfig", "GatehouseHTTP1",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The parsers and encoders that read hostile bytes, as fuzz targets with their invariants. Always
        // built, so the unit tests replay every corpus file through them; libFuzzer drives them only in
        // the GATEHOUSE_FUZZ=1 package below.
        .target(
            name: "GatehouseFuzzTargets",
            dependencies: ["GatehouseHTTP1", "GatehouseRouting", "GatehouseSecurity", "GatehouseConfig",
                           "GatehouseRegex", "GatehouseSnapshot", "GatehouseDNS", "GatehouseRateLimit",
                           .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "GatehouseFuzzTargetsTests", dependencies: ["GatehouseFuzzTargets", "GatehouseHTTP1"]),
        .testTarget(name: "GatehouseRegexTests", dependencies: ["GatehouseRegex"]),
        .testTarget(name: "GatehouseConfigTests", dependencies: ["GatehouseConfig"]),
        .testTarget(
            name: "GatehouseRoutingTests",
            dependencies: ["GatehouseRouting", "GatehouseSnapshot", "GatehouseConfig", "GatehouseRegex", "GatehouseUpstream"]
        ),
        .testTarget(name: "GatehouseTelemetryTests", dependencies: ["GatehouseTelemetry"]),
        .testTarget(name: "GatehouseDNSTests", dependencies: ["GatehouseDNS"]),
        .testTarget(name: "GatehouseUpstreamTests", dependencies: ["GatehouseUpstream"]),
        .testTarget(name: "GatehouseRateLimitTests", dependencies: ["GatehouseRateLimit"]),
        .testTarget(name: "GatehouseStateStoreTests", dependencies: ["GatehouseStateStore", "GatehouseRateLimit"]),
        .testTarget(
            name: "GatehouseIdentityTests",
            dependencies: [
                "GatehouseIdentity",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "GatehouseSecurityTests",
            dependencies: [
                "GatehouseSecurity", "GatehouseSnapshot", "GatehouseConfig", "GatehouseRateLimit", "GatehouseRouting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "GatehouseHTTP1Tests",
            dependencies: ["GatehouseHTTP1", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "GatehouseProxyTests",
            dependencies: [
                "GatehouseProxy", "GatehouseRouting", "GatehouseHTTP1", "GatehouseTelemetry", "GatehouseSecurity",
                "GatehouseDNS", "GatehouseSnapshot", "GatehouseUpstream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]
        ),
    ]
)

// `scripts/fuzz` builds this with `-sanitize=fuzzer,address`; it calls into libFuzzer, so it cannot link
// in an ordinary build and is declared only when asked for.
if Context.environment["GATEHOUSE_FUZZ"] == "1" {
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(name: "gatehouse-fuzz", dependencies: ["GatehouseFuzzTargets", "CLibFuzzer"],
                          path: "Fuzz/Entry"),
    ]
}
