"""The typer application; sub-command modules attach themselves on import."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ep",
    help="Execution Platform: one interface to every LLM provider.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from . import (
    chat,  # noqa: F401  (registers commands)
    keys,  # noqa: F401  (registers commands)
    serve,  # noqa: F401  (registers commands)
)
from .validate import validate as _validate  # noqa: E402,F401  (registers commands)
