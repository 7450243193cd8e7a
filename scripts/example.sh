#!/usr/bin/env bash
# Install Portway into .venv and serve the bundled example (embedded store, no Redis needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check .
exec .venv/bin/portway serve examples/hello/portway.yaml --host "${HOST:-127.0.0.1}" --port "${PORT:-3000}" "$@"
