"""Request ids: unique per call without a system call or a UUID object per request.

An id is 32 lowercase hex characters, like ``uuid4().hex`` was: 16 random ones drawn once per process
(again in a forked child) and a 16-digit counter. Ids from different processes differ in the random
half; ids from one process differ in the counter. Nothing reads meaning into them.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter: itertools.count[int] = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def request_id() -> str:
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFFFFFF:016x}"
