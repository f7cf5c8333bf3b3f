"""Importing the package must stay cheap: provider SDKs and the HTTP stack load lazily."""

import subprocess
import sys


def test_import_is_fast_and_lazy() -> None:
    code = (
        "import time, sys; t = time.perf_counter(); import execution_platform; "
        "print(time.perf_counter() - t); "
        "print(','.join(m for m in ('aiohttp', 'fastapi', 'openai', 'anthropic', 'google.genai', 'pydantic') "
        "if m in sys.modules))"
    )
    best = min(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[0])
        for _ in range(3)
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert best < 0.3, f"import took {best:.3f}s"
    assert len(loaded) == 1, f"heavy modules imported eagerly: {loaded[1:]}"
