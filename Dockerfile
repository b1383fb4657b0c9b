# wyoming-indextts: Home Assistant add-on image, also run on its own with
#   docker run -p 10200:10200 IMAGE [SERVER FLAGS...]
# The entrypoint (rootfs/usr/local/bin/indextts-entrypoint) picks the way: under the
# Home Assistant Supervisor it execs the base image's s6-overlay /init (services in
# rootfs/etc/s6-overlay); anywhere else it execs the server directly as PID 1.
# tools/docker_steps.py replays these steps without Docker (tests/test_addon.py runs it).

# Debian, not Alpine: onnxruntime has no musl wheels. bookworm's Python is 3.11.
ARG BUILD_FROM=ghcr.io/home-assistant/amd64-base-debian:bookworm
# hadolint ignore=DL3006
FROM ${BUILD_FROM}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ORT_DISABLE_TELEMETRY=1

# libsndfile and espeak-ng come inside the soundfile and espeakng-loader wheels.
# Not pinned: bookworm only gets security fixes, and a pinned version vanishes from its
# mirrors once the next fix lands, which would break every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /usr/src/wyoming-indextts
COPY pyproject.toml README.md LICENSE ./
COPY wyoming_indextts ./wyoming_indextts
COPY models ./models
# Editable: the server finds the Chinese voice in models/ next to its package, so the image
# holds its 23 MB once (a wheel install carries it inside the package: tests/test_package.py).
# The import check fails the build, not the first request, when the runtime cannot load.
# The front end's compact dictionaries and the lexical analyser's graph with its states output
# are built here (into ~/.cache/wyoming-indextts), not at the first start.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -e . \
    && /opt/venv/bin/python -c "import onnxruntime, piper, espeakng_loader, wyoming_indextts.frontend" \
    && /opt/venv/bin/python -m wyoming_indextts.frontend.dictionaries \
    && /opt/venv/bin/python -c "from wyoming_indextts.frontend.lexical import default_analyzer; default_analyzer()"

COPY rootfs /
WORKDIR /

EXPOSE 10200
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "wyoming_indextts.healthcheck", "--uri", "tcp://127.0.0.1:10200"]

ENTRYPOINT ["/usr/local/bin/indextts-entrypoint"]
CMD []
