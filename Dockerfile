# syntax=docker/dockerfile:1
# Mathia's emulated deployment as one image: `mathia-local emulate` plays API Gateway (the
# WebSocket and HTTP APIs and the management API), the SQS event source mappings and the
# EventBridge schedule, and runs the eight Lambda function binaries that sit beside it in
# /app/bin, against the AWS services at AWS_ENDPOINT_URL. Used by docker-compose.yml.

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
# cmake: some native deps of the AWS SDK's TLS stack (aws-lc-sys) may need it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target dir between builds; the binaries
# are copied out of the (unpersisted) target mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p mathia-local \
      -p ws-connect -p ws-message -p ws-disconnect -p http-api \
      -p ai-worker -p moderation-worker -p reminder-worker -p scheduler \
 && mkdir -p /out/bin \
 && cp target/release/mathia-local \
       target/release/ws-connect target/release/ws-message target/release/ws-disconnect \
       target/release/http-api target/release/ai-worker target/release/moderation-worker \
       target/release/reminder-worker target/release/scheduler \
       /out/bin/

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mathia \
 && useradd --system --uid 10001 --gid mathia --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin mathia
WORKDIR /app
# mathia-local finds the function binaries beside its own executable.
COPY --from=builder /out/bin/ /app/bin/
COPY static/ ./static/
COPY migrations/ ./migrations/
# /app/.mathia (relative to the working directory): local state, above all the master key
# mathia-local generates when MATHIA_MASTER_KEY is unset. docker-compose.yml mounts a named
# volume here; a new volume copies this directory's owner, so the app user can write it.
RUN mkdir -p /app/.mathia && chown mathia:mathia /app/.mathia && chmod 0700 /app/.mathia
ENV PATH=/app/bin:$PATH \
    MATHIA_STATIC_DIR=/app/static \
    MATHIA_BIND=0.0.0.0:8000 \
    MATHIA_EMULATOR_WS_BIND=0.0.0.0:8001 \
    MATHIA_EMULATOR_AWS_BIND=0.0.0.0:8002 \
    RUST_LOG=info
# 8000: the site and /api/*; 8001: the emulated WebSocket API (/prod, /prod/@connections/{id});
# 8002: the pass-through to the AWS services that the functions and presigned S3 URLs use.
EXPOSE 8000 8001 8002
USER 10001:10001
ENTRYPOINT ["/app/bin/mathia-local"]
CMD ["emulate"]
