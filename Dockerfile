# syntax=docker/dockerfile:1
# The modelsync container image: ghcr.io/modelsync/modelsync:VERSION.
#
#   docker build -t ghcr.io/modelsync/modelsync:0.1.0 \
#     --build-arg MODELSYNC_GIT_COMMIT="$(git rev-parse HEAD)" .
#
# The build stage compiles exactly what the wheel ships (pyproject.toml's
# [tool.maturin]): `cargo build --release --locked`, default features, so
# libgit2 and OpenSSL are vendored and linked statically. The runtime stage
# is distroless (glibc, CA certificates, no shell, no package manager) and
# runs as the unprivileged `nonroot` user. No HEALTHCHECK: Kubernetes probes
# (`/healthz`, `/readyz`) decide; see examples/kubernetes/.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# protoc and the well-known types: etcd-client generates its gRPC code.
# perl and make (for the vendored OpenSSL) come with the Rust image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# The build context has no .git: the commit comes from the build argument.
ARG MODELSYNC_GIT_COMMIT=unknown
ENV MODELSYNC_GIT_COMMIT=${MODELSYNC_GIT_COMMIT}
RUN cargo build --release --locked --bin modelsync \
    && install -D -m 0755 target/release/modelsync /out/modelsync \
    && mkdir -p /out/home/.cache

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG MODELSYNC_GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="modelsync" \
      org.opencontainers.image.description="Declarative promotion controller for ML model registries (MLflow first)" \
      org.opencontainers.image.url="https://github.com/modelsync/modelsync" \
      org.opencontainers.image.source="https://github.com/modelsync/modelsync" \
      org.opencontainers.image.documentation="https://github.com/modelsync/modelsync#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${MODELSYNC_GIT_COMMIT}"
COPY --from=build /out/modelsync /usr/local/bin/modelsync
# A writable home for the git source's cache (~/.cache) and the embedded
# registry's default file (.modelsync/ in the working directory).
COPY --from=build --chown=65532:65532 /out/home /home/nonroot
ENV HOME=/home/nonroot
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["modelsync"]
CMD ["--help"]
