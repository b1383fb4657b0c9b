# Home Assistant add-on image; also runs on its own: docker run -p 10200:10200 IMAGE
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base-debian:bookworm
# hadolint ignore=DL3006
FROM ${BUILD_FROM}

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ORT_DISABLE_TELEMETRY=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian bookworm's Python 3.11; onnxruntime has no musl wheels, hence Debian, not Alpine.
# Versions are not pinned: bookworm only ships security fixes, and pinned versions vanish
# from its mirrors, which would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /usr/src/wyoming-indextts
COPY pyproject.toml README.md ./
COPY wyoming_indextts ./wyoming_indextts
COPY models ./models
COPY tools/install.sh ./tools/install.sh
RUN ./tools/install.sh /opt/venv /usr/src/wyoming-indextts

COPY rootfs /

EXPOSE 10200
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "wyoming_indextts.healthcheck", "--uri", "tcp://127.0.0.1:10200"]

# The base image's s6-overlay /init is the exec-form entrypoint: it runs
# /etc/s6-overlay/s6-rc.d/indextts/run, which execs Python, so SIGTERM reaches the server.
ENTRYPOINT ["/init"]
