#!/bin/sh
# Build stage of the Dockerfile (replayed outside Docker by tests/deploy/test_image.py):
# a wheel for Portway and for every runtime dependency, at the versions of constraints.txt, into
# WHEEL_DIR. Run from the source tree (pyproject.toml, server/, routes/, connections/).
#   sh deploy/image/build-wheels.sh WHEEL_DIR
set -eu
wheel_dir="$1"
python="${PYTHON:-python3}"
"$python" -m pip wheel --disable-pip-version-check -q -c constraints.txt --wheel-dir "$wheel_dir" .
