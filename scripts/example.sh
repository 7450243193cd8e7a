#!/usr/bin/env bash
# Install Portway into .venv and serve every bundled example (embedded store, no Redis needed):
# examples/portway.yaml = the hello REST and HTTP APIs and the chat WebSocket API. boto3 (used by
# the chat handlers) and websockets (used by examples/chat/client.py) are installed beside Portway.
# The first run downloads and builds the dependencies (a few minutes): each step says what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
step() { printf '==> %s\n' "$*"; }
if [ ! -x .venv/bin/python ]; then
    step "creating the virtual environment .venv"
    "$PY" -m venv .venv
fi
step "updating pip in .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip -c constraints.txt
# constraints.txt: the tested versions (refresh on purpose with scripts/lock.sh). Not quiet: on a
# first run this step takes minutes, and pip's own lines show it progressing.
step "installing Portway, boto3 and websockets into .venv (the first run takes a few minutes)"
.venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt . boto3 websockets
step "serving examples/portway.yaml (Ctrl-C stops)"
exec .venv/bin/portway serve examples/portway.yaml --host "${HOST:-127.0.0.1}" --port "${PORT:-3000}" "$@"
