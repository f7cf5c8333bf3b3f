"""Where the serving process's resident memory goes, by top-level package.

    .venv/bin/python bench/memory.py [--top 25]

In a fresh interpreter, does what ``ep serve`` does before it answers (imports the command line,
builds the app with ``create_app_from_env``, settles the heap) and charges each module's import the
growth of the process's resident memory while that module's own code ran, nested imports excluded.
The figures are RSS, so they include what a module's import allocates (classes, pydantic validators,
FastAPI routes built at import), and the pages of its compiled extensions it touches. They depend on
import order (a shared dependency is charged to whoever imports it first) and are for finding what
is worth cutting, not for adding up exactly. ``idle RSS`` itself is measured by ``startup.py``.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib._bootstrap as bootstrap
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def charge_imports() -> tuple[collections.Counter[str], Callable[[], None]]:
    """Counter of bytes per top-level package, filled as modules load; and a function that stops it."""
    charged: collections.Counter[str] = collections.Counter()
    stack: list[list[int]] = []  # [rss at start, bytes charged to nested imports]
    original: Callable[..., Any] = bootstrap._find_and_load  # type: ignore[attr-defined]

    def find_and_load(name: str, import_: Any) -> Any:
        if name in sys.modules:
            return original(name, import_)
        stack.append([rss(), 0])
        try:
            return original(name, import_)
        finally:
            start, nested = stack.pop()
            grown = rss() - start
            parts = name.split(".")
            charged[(name if os.environ.get("EP_MEMORY_FULL") else ".".join(parts[:2])) if parts[0] == "execution_platform" else parts[0]] += grown - nested
            if stack:
                stack[-1][1] += grown

    bootstrap._find_and_load = find_and_load  # type: ignore[attr-defined]

    def stop() -> None:
        bootstrap._find_and_load = original  # type: ignore[attr-defined]

    return charged, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ep.db"
        os.environ["EP_DATABASE_URL"] = url
        os.environ.pop("EP_CONFIG", None)
        # As ``ep serve`` does: the schema is made current by a child process first (alembic never
        # loads here), and uvicorn's file watcher is kept out before uvicorn is imported.
        subprocess.run([sys.executable, "-c", "import sys; from execution_platform.cli.serve import migrate_aside; "
                        "migrate_aside(sys.argv[1])", url], check=True)
        start = rss()
        charged, stop = charge_imports()
        serve = importlib.import_module("execution_platform.cli.serve")  # ``ep`` itself: typer, every command
        serve.skip_file_watcher()
        importlib.import_module("uvicorn")
        from execution_platform.gateway.app import create_app_from_env
        from execution_platform.gateway.heap import settle

        create_app_from_env()
        settle()
        stop()
        end = rss()
    imports = sum(charged.values())
    print(f"interpreter at start: {start / 1e6:.1f} MB; after the imports, the app and settle(): "
          f"{end / 1e6:.1f} MB ({len(sys.modules)} modules)")
    print(f"charged to imports: {imports / 1e6:.1f} MB; the rest (building the app beyond its imports, "
          f"then settle()'s collection and trim): {(end - start - imports) / 1e6:.1f} MB")
    print("\n| package (this project's by sub-package) | MB |\n|---|---|")
    for name, grown in charged.most_common(args.top):
        print(f"| {name} | {grown / 1e6:.2f} |")

if __name__ == "__main__":
    main()
