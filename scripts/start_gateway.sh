#!/usr/bin/env bash
# Creates the virtual environment if needed, installs the platform and starts the gateway on its
# embedded defaults (SQLite ledger, in-process limits, 127.0.0.1:8000). Extra arguments go to `ep serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install -q -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
exec .venv/bin/ep serve "$@"
