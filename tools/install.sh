#!/usr/bin/env bash
# Install the server into a virtual environment. The Dockerfile runs exactly this, and
# tests/test_addon.py runs it into a temporary folder, so the image's recipe is exercised
# on machines without a Docker engine.
#   tools/install.sh VENV_DIR SOURCE_DIR
set -euo pipefail
venv="${1:?usage: install.sh VENV_DIR SOURCE_DIR}"
source_dir="${2:?usage: install.sh VENV_DIR SOURCE_DIR}"

python3 -m venv "${venv}"
"${venv}/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip
"${venv}/bin/python" -m pip install --quiet --no-cache-dir -e "${source_dir}"
# Fail the build now, not at the first request, if the runtime cannot load.
"${venv}/bin/python" -c "import onnxruntime, piper, espeakng_loader, wyoming_indextts.frontend"
