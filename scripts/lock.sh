#!/usr/bin/env bash
# Refresh constraints.txt on purpose: resolve pyproject.toml's ranges (with the test extras and the
# example's extra packages) against today's package index in a throw-away venv, then write every
# resolved version. Run the whole suite with the new file (bash scripts/test.sh) before committing it;
# if a new release breaks something, fix the code or lower the upper bound in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check '.[test]' boto3 websockets
{
  echo "# Tested versions: scripts/test.sh and scripts/example.sh install with 'pip install -c constraints.txt'."
  echo "# Refreshed on purpose with 'bash scripts/lock.sh' (then run the whole suite); do not edit by hand."
  "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable --disable-pip-version-check \
    | grep -v -i -E '^(portway|setuptools|wheel)[= ]' | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pinned versions"

# The AWS JS SDK client of the @connections test: tests/js/package-lock.json, installed with npm ci.
rm -f tests/js/package-lock.json
npm install --prefix tests/js --package-lock-only --no-audit --no-fund --silent
echo "tests/js/package-lock.json refreshed"
