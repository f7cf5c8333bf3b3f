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

# Sub-command modules attach themselves to ``app`` on import, so they come after it.
from . import chat, costs, keys, serve, top, validate  # noqa: E402,F401
