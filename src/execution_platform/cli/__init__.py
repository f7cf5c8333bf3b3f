"""The ``ep`` command line. Each sub-command lives in its own module and is registered here."""

from __future__ import annotations

from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
