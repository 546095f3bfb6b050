# syntax=docker/dockerfile:1
#
# userhook container image: a release build in the official Rust image, copied into
# distroless "cc" (glibc + libgcc, no shell, no package manager), running as non-root.
#
#   docker build -t userhook:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/config:/etc/userhook:ro" userhook:0.1.0
#
# Why distroless/cc and not a musl static binary on distroless/static: the binary is linked
# against glibc by the default target, and musl's allocator is markedly slower for a proxy
# that allocates per request; distroless/cc adds only glibc and libgcc (~20 MB image).
# No HEALTHCHECK: distroless has no shell or curl to run one. Orchestrators probe the admin
# port instead (GET /healthz, /readyz on 9090; see examples/kubernetes/deployment.yaml).

FROM rust:1.91-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# include_str! pulls the demo and reference configs into the binary.
COPY config ./config
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/userhook /out/userhook \
    && mkdir -p /out/state/spool

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/userhook /usr/local/bin/userhook
COPY config/userhook.yaml /etc/userhook/userhook.yaml
# The working directory holds the default spool (./data/spool); mount a volume here (or set
# delivery.spool_dir) so a read-only root filesystem works.
COPY --from=builder --chown=65532:65532 /out/state /var/lib/userhook
WORKDIR /var/lib/userhook
# 65532 is distroless's "nonroot".
USER 65532:65532
# 8080: the proxy (clients). 9090: the admin API (/healthz /readyz /metrics /config).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/userhook"]
CMD ["serve", "--config", "/etc/userhook/userhook.yaml"]
