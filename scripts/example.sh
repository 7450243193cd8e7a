#!/usr/bin/env bash
# Install Portway into .venv and serve every bundled example (embedded store, no Redis needed):
# examples/portway.yaml = the hello REST and HTTP APIs and the chat WebSocket API. boto3 (used by
# the chat handlers) and websockets (used by examples/chat/client.py) are installed beside Portway.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip -c constraints.txt
# constraints.txt: the tested versions (refresh on purpose with scripts/lock.sh).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt . boto3 websockets
exec .venv/bin/portway serve examples/portway.yaml --host "${HOST:-127.0.0.1}" --port "${PORT:-3000}" "$@"
