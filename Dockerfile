# syntax=docker/dockerfile:1
# mathia-local: the local gateway (HTTP + WebSocket + static client + in-process
# workers) as a container. Used by docker-compose.yml ("emulated" mode).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
# cmake: some native deps of the AWS SDK's TLS stack (aws-lc-sys) may need it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target dir between builds; the binary
# is copied out of the (unpersisted) target mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release -p mathia-local \
 && cp target/release/mathia-local /usr/local/bin/mathia-local

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mathia \
 && useradd --system --uid 10001 --gid mathia --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin mathia
WORKDIR /app
COPY --from=builder /usr/local/bin/mathia-local /usr/local/bin/mathia-local
COPY static/ ./static/
COPY migrations/ ./migrations/
# /app/.mathia: where mathia-local may keep local state (e.g. a generated
# master key when MATHIA_MASTER_KEY is unset); writable by the app user only.
RUN mkdir -p /app/.mathia && chown mathia:mathia /app/.mathia
ENV MATHIA_BIND=0.0.0.0:8000 \
    RUST_LOG=info
EXPOSE 8000
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/mathia-local"]
