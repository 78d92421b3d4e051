# Songda container image: multi-stage, debian:bookworm-slim.
# NOTE: written but not built on the development machines (no Docker engine there).
#   docker build -t songda .
#   docker run --rm -e SONGDA_KAFKA_BROKERS=kafka:9092 -e SONGDA_REDIS_URL=redis://redis:6379/0 \
#              -e SONGDA_PUBLIC_BASE_URL=https://songda.court.example -e SONGDA_ADMIN_TOKEN=... \
#              -e SONGDA_LINK_SECRET=... (and the other secrets README.md lists) -p 8080:8080 songda
# docs/compose.yaml names every variable and secret file `songda run` needs with the shipped config.

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
ENTRYPOINT ["/usr/local/bin/songda"]
CMD ["run", "--config", "/opt/songda/config/gateway.yaml"]
