#!/usr/bin/env bash
# The main job on embedded defaults, from a fresh clone: installs the project into .venv, then runs
# the Temporal dev server (UI on http://localhost:8233), PostgreSQL (DATABASE_URL or embedded),
# a SCIM server on loopback, the worker and a sample engagement through every phase.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable .
exec .venv/bin/python demo.py "$@"
