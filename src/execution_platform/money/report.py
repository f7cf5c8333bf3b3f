"""Spend reports shared by ``GET /costs`` and ``ep costs``: parameter parsing and the ledger query.

Dates: ``since`` and ``until`` take ``YYYY-MM-DD`` or an ISO date-time (UTC when no offset is given).
A bare ``until`` date includes that whole day, so ``--since 2026-01-01 --until 2026-01-31`` is January.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from .ledger import GROUP_NAMES, Ledger

BY_CHOICES = GROUP_NAMES
STATUSES = ("ok", "error", "cancelled", "partial")
# The ledger's timestamps are naive UTC from this era; bounds far from ``datetime.min/max`` keep the
# ``until`` day shift and offset conversion from overflowing (a 400, never a 500, for 9999-12-31).
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9000, 1, 1)


def parse_time(value: str | None, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (start of that day, or start of the next day when ``end``) or ISO date-time."""
    if value is None or value == "":
        return None
    text = value.strip()
    shown = text[:40]
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            parsed = datetime(day.year, day.month, day.day)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{shown}' is not a date (YYYY-MM-DD) or an ISO date-time") from None
    if parsed.tzinfo is not None:
        offset = parsed.utcoffset() or timedelta(0)
        parsed = parsed.replace(tzinfo=None)
        if not EARLIEST + offset <= parsed < LATEST + offset:
            raise ValueError(_out_of_range(shown))
        parsed -= offset
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(_out_of_range(shown))
    return parsed + timedelta(days=1) if end and len(text) == 10 else parsed


def _out_of_range(shown: str) -> str:
    return f"'{shown}' is out of range ({EARLIEST.date()} to {(LATEST - timedelta(days=1)).date()})"


def check_by(by: str | None) -> str | None:
    if by is not None and by not in BY_CHOICES:
        raise ValueError(f"'by' must be one of {', '.join(BY_CHOICES)}")
    return by


def check_status(status: str | None) -> list[str] | None:
    if not status:
        return None
    chosen = [s.strip() for s in status.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown:
        raise ValueError(f"'status' must be among {', '.join(STATUSES)} (got {', '.join(unknown)})")
    return chosen


async def spend(
    ledger: Ledger,
    *,
    by: str | None = None,
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    where: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``/costs`` document; raises ``ValueError`` with a readable reason on bad parameters."""
    return await ledger.costs(
        check_by(by),
        since=parse_time(since),
        until=parse_time(until, end=True),
        status=check_status(status),
        where=where,
    )


def spend_sync(ledger: Ledger, **params: Any) -> dict[str, Any]:
    by = check_by(params.get("by"))
    return ledger.costs_sync(
        by,
        since=parse_time(params.get("since")),
        until=parse_time(params.get("until"), end=True),
        status=check_status(params.get("status")),
        where=params.get("where"),
    )
