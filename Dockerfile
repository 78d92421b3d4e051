# Songda container image: multi-stage, debian:bookworm-slim.
# NOTE: written but not built on the development machines (no Docker engine there).
#   docker build -t songda .
#   docker run --rm --env-file /etc/songda/songda.env -v /etc/songda/gateway.yaml:/etc/songda/gateway.yaml:ro \
#              -v /etc/songda/court.key:/run/secrets/songda_evidence_key:ro -p 8080:8080 \
#              songda run --config /etc/songda/gateway.yaml
#   (songda.env, mode 0600: SONGDA_KAFKA_BROKERS, SONGDA_REDIS_URL, SONGDA_PUBLIC_BASE_URL, the secrets README.md
#   lists, SONGDA_EVIDENCE_KEY_FILE=/run/secrets/songda_evidence_key; secrets in an env file, not on the command line)
# The image runs as uid 10001: the mounted key must be readable by it (songda keygen writes it 0600 for its maker).
# docs/compose.yaml names every variable and secret file `songda run` needs with the shipped config.
# The built-in /opt/songda/config/gateway.yaml is the example (placeholder template codes and app ids, an SMTP
# server on loopback): mount the court's own.

FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config librdkafka-dev libhiredis-dev libcpp-httplib-dev libyaml-cpp-dev \
      libgtest-dev libgmock-dev nlohmann-json3-dev libvalijson-dev libssl-dev libcurl4-openssl-dev \
      prometheus-cpp-dev libspdlog-dev libpugixml-dev libjemalloc-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    && ninja -C build \
    && ctest --test-dir build -L unit --no-tests=error --output-on-failure

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      librdkafka1 libhiredis0.14 libcpp-httplib0.11 libyaml-cpp0.7 libssl3 libcurl4 libprometheus-cpp-core1.0 \
      libspdlog1.10 libfmt9 libpugixml1v5 libjemalloc2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 songda
COPY --from=build /src/build/songda /usr/local/bin/songda
COPY --from=build /src/config /opt/songda/config
COPY --from=build /src/schemas /opt/songda/schemas
USER songda
WORKDIR /opt/songda
EXPOSE 8080
ENV SONGDA_HTTP_LISTEN=0.0.0.0:8080 SONGDA_HOME=/opt/songda
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/songda", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/songda"]
CMD ["run", "--config", "/opt/songda/config/gateway.yaml"]
