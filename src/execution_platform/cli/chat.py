"""``ep chat``: one call from the terminal, streamed as it arrives with ``--stream``.

The call is metered like a gateway call (same ``EP_DATABASE_URL`` ledger, budgets and limits of the
configuration), so ``ep costs`` shows terminal spend next to the gateway's.
"""

from __future__ import annotations

import asyncio
import sys

import typer

from ..model.address import persona_address
from .app import app


@app.command()
def chat(
    prompt: str = typer.Argument(..., help="What to ask."),
    model: str | None = typer.Option(None, "--model", "-m", help="provider/model, e.g. openai/gpt-4o-mini"),
    persona: str | None = typer.Option(None, "--persona", "-p", help="Route through a persona policy."),
    stream: bool = typer.Option(False, "--stream/--no-stream", help="Print tokens as they arrive."),
    system: str | None = typer.Option(None, "--system", help="A system prompt."),
) -> None:
    """Send PROMPT to a model and print the answer."""
    from ..errors import EPError

    if not model and not persona:
        model = _default_model()
    if not model and not persona:
        raise typer.BadParameter("give --model provider/model or --persona NAME")
    address = model or persona_address(persona or "")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    try:
        asyncio.run(_run(address, messages, stream))
    except EPError as exc:
        typer.secho(f"error ({exc.type}): {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _default_model() -> str | None:
    """``local`` when no cloud provider has a key (the same rule as the gateway's)."""
    from ..config.availability import cloud_configured, local_available
    from ..config.settings import Settings

    settings = Settings()
    if cloud_configured(settings) or not local_available(settings):
        return None
    return "local"


async def _run(model: str, messages: list[dict[str, str]], stream: bool) -> None:
    from ..client import Client
    from ..model import TextDelta

    async with Client(meter=True) as client:  # closing the client flushes the ledger row
        if stream:
            async for event in client.stream(model=model, messages=messages):
                if isinstance(event, TextDelta):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            response = await client.chat(model=model, messages=messages)
            sys.stdout.write(response.message.text + "\n")
