"""Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS``) in the full run: ``ast.parse`` one thread at a time.

CPython 3.11's AST validation keeps its recursion-depth bookkeeping in interpreter-wide state, so two
threads parsing at once can fail with ``SystemError: AST constructor recursion depth mismatch``.
Hypothesis parses source to describe lambdas while it generates, and schemathesis runs several
workers as threads: the run crashed at random. A lock around the one call keeps the concurrent
workers (the run waits on loopback round trips, not on the CPU) without the race; 3.12 fixed the bug.
"""

from __future__ import annotations

import ast
import sys
import threading
from typing import Any

if sys.version_info < (3, 12) and not getattr(ast.parse, "serialized", False):
    _lock = threading.Lock()
    _parse = ast.parse

    def _serialized_parse(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return _parse(*args, **kwargs)

    _serialized_parse.serialized = True  # type: ignore[attr-defined]
    ast.parse = _serialized_parse  # type: ignore[assignment]
