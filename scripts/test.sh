#!/usr/bin/env bash
# Install what the tests need and run every gate: redis-server and nginx (Debian packages; the tests
# start their own servers on free ports), the AWS JS SDK client (npm), the project with its test extras
# in .venv, then ruff, ruff format, mypy --strict and pytest (warnings are errors, per-test timeouts).
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx: the load balancer of `portway cluster` and the check of deploy/nginx.conf (not started).
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
redis-server --version

# The AWS JS SDK v3 client, for the @connections wire-compatibility test (Node.js from Debian if absent).
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
npm ci --prefix tests/js --no-audit --no-fund --silent  # tests/js/package-lock.json: tested versions

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip -c constraints.txt
# constraints.txt: the exact versions this suite was last run with (refresh: bash scripts/lock.sh).
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy server routes connections
echo "== pytest";      .venv/bin/pytest "$@"
