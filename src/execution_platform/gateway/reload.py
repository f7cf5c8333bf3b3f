"""Reload the YAML configuration on SIGHUP without dropping in-flight requests.

The router swaps one snapshot reference, so a call that has already resolved its provider stack
finishes on it, and the next call sees the new personas, deployments and capabilities. An invalid
file changes nothing: the previous configuration stays in force and the reason is logged, so a typo
during a long multi-agent run never takes the gateway down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from ..errors import scrub
from .limits import Limits
from .state import Gateway

log = logging.getLogger("execution_platform.gateway")


def reload_config(gw: Gateway, path: str | os.PathLike[str]) -> bool:
    """Load ``path`` and make it the gateway's configuration; False (old one kept) when it is invalid."""
    from ..config.file import load_config

    try:
        config = load_config(path)
    except Exception as exc:  # any failure must leave the running configuration untouched
        log.error("config reload from %s failed, keeping the previous configuration: %s", path, scrub(str(exc)))
        return False
    router = gw.client.router
    if router is not None:
        router.reload(config)
    gw.config = config
    gw.limits = Limits.from_mapping(config.server)
    gw.capability_cache.clear()
    log.info("configuration reloaded from %s", path)
    return True


def install_sighup(gw: Gateway, path: str | os.PathLike[str]) -> bool:
    """Reload ``path`` on SIGHUP in the running loop; False where signals cannot be handled here.

    Only the main thread may own signal handlers, so a gateway run in a helper thread (tests, embedding)
    simply does without.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return False
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_config, gw, path)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def remove_sighup() -> None:
    """Drop the SIGHUP handler installed by :func:`install_sighup` (at shutdown)."""
    try:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        pass
