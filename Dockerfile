# hark in a container: Debian 12, built from this source tree, run as a
# non-root user. Build and run:
#   docker build -t hark .
#   docker run --rm -p 8080:8080 hark
# The image listens on all interfaces of the container (HARK_HOST=0.0.0.0):
# publish the port only where it should be reachable, and set HARK_API_KEYS
# (docs/auth.md) or put TLS in front (docs/deployment.md).

FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us \
        libspeexdsp-dev libwebrtc-audio-processing-dev libopus-dev \
        libwebsockets-dev libnats-dev libmsgpack-dev libssl-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt hark.pc.in ./
COPY cmake cmake
COPY include include
COPY src src
COPY web web
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    && cmake --build build -j"$(nproc)" \
    && cmake --install build --prefix /opt/hark

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us \
        libspeexdsp1 libwebrtc-audio-processing1 libopus0 \
        libwebsockets17 libnats3.4 libmsgpackc2 libssl3 libcurl4 \
        ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hark
COPY --from=build /opt/hark/ /usr/local/
RUN ldconfig
USER hark
ENV HARK_HOST=0.0.0.0 HARK_PORT=8080
EXPOSE 8080
# Ready: model loaded and not shutting down (SIGTERM drains open sessions
# for --shutdown-timeout seconds; docker stop waits 10 s by default, so
# give it --time 15 or more).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${HARK_PORT}/readyz" >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["hark"]
CMD ["serve"]
