#!/bin/sh
# Runtime stage of the Dockerfile (replayed outside Docker by tests/deploy/test_image.py):
# a fresh virtual environment at VENV with Portway installed from WHEEL_DIR only (--no-index:
# nothing is downloaded, and nothing but Portway's runtime dependencies gets in: no compiler, no
# test tools, no pip cache).
#   sh deploy/image/install-runtime.sh WHEEL_DIR VENV
set -eu
wheel_dir="$1"
venv="$2"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q --no-cache-dir --no-index \
    --find-links "$wheel_dir" portway
