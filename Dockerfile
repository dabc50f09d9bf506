# Gatehouse container image: build with the Swift toolchain, run on slim Debian with only the shared
# libraries the binary needs (scripts/check-dockerfile runs the build step here and checks that list
# against `ldd`).
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -v "$PWD/conf:/etc/gatehouse:ro" gatehouse

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcre2-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
# Only sources are built, but SwiftPM refuses a manifest whose test targets have no folder.
COPY Tests ./Tests
# The Swift runtime and Foundation are linked in, so the runtime image needs no Swift.
RUN swift build -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --product gatehouse \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/gatehouse" /out/gatehouse

FROM ${RUNTIME_IMAGE}
# libpcre2-8-0: regex matching; libsqlite3-0: the sqlite rate-limit store; ca-certificates: https
# jwksUri and TLS origination to public hosts. /var/lib/gatehouse: a Bootstrap `stateDir` (mount a
# volume there to keep quotas across containers).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcre2-8-0 libsqlite3-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse \
    && install -d -o gatehouse -g gatehouse -m 0750 /var/lib/gatehouse
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY conf/ /etc/gatehouse/
USER gatehouse
# The example config's ports: 8080 (HTTP) and 15000 (admin, bound to loopback inside the container).
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/gatehouse", "ready", "--admin", "127.0.0.1:15000"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["run", "--config", "/etc/gatehouse"]
