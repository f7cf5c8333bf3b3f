"""The server process's heap, settled once at start-up so the garbage collector leaves it alone.

Profiling ``ep serve`` under load showed the cyclic collector as the largest single cost: each full
collection walks every object the process holds, and most of those (modules, FastAPI's routes and
schemas, pydantic validators, the codecs) are made once at start-up and live as long as the process.
``gc.freeze()`` moves them out of the collector's generations, so a collection only walks what
requests allocated since. Per-request garbage is still collected as before; reference counting frees
nearly all of it anyway. Only the server's own process does this (``create_app_from_env``), never an
application that embeds the gateway or the test suite.
"""

from __future__ import annotations

import gc
import os

# ``EP_GC_FREEZE=0`` leaves the collector as CPython sets it (to measure what the freeze buys).
ENV = "EP_GC_FREEZE"

# Young-generation threshold: a request allocates a few thousand container objects, so CPython's
# default (700) runs a young collection several times per request; ten times that keeps the
# collections (cheap ones, after the freeze) to about one per request. Older generations keep theirs.
YOUNG_THRESHOLD = 7000


def warm_imports() -> None:
    """Import what the first requests would otherwise import lazily, so it is frozen with the rest."""
    from ..codecs import anthropic_messages, gemini, openai_chat, openai_responses  # noqa: F401
    from ..providers import anthropic, openai  # noqa: F401
    from . import errors

    for surface in ("openai", "anthropic"):
        errors.codec_for(surface)


def settle() -> None:
    """Collect what start-up left behind, then freeze the rest out of the collector's reach."""
    if os.environ.get(ENV, "1") == "0":
        release_free_heap()
        return
    warm_imports()
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    release_free_heap()


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the kernel (glibc's ``malloc_trim``).

    Start-up frees much of what it allocates (import machinery, pydantic's schema building, the
    collection above), but glibc keeps freed memory in its arenas, where it counts as resident until
    reused. Trimming once, here, returns it (~2 MB); per request it would only cost time. Other C
    libraries (musl) have no such call and nothing is done."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols, libc's among them
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
