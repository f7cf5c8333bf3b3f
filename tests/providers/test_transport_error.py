"""Transport failures map to the same errors whichever client raised them: the pool's or aiohttp's."""

from __future__ import annotations

import aiohttp
import pytest

from execution_platform.errors import UpstreamConnectionError, UpstreamTimeoutError
from execution_platform.providers.http import ConnectionLost, transport_error


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (TimeoutError(), UpstreamTimeoutError, "p: timed out calling"),
        (aiohttp.ServerTimeoutError(), UpstreamTimeoutError, "p: timed out calling"),
        (ConnectionLost(), UpstreamConnectionError, "p: connection lost calling"),
        (aiohttp.ServerDisconnectedError(), UpstreamConnectionError, "p: connection lost calling"),
        (aiohttp.ClientPayloadError(), UpstreamConnectionError, "p: connection lost calling"),
        (ConnectionRefusedError(), UpstreamConnectionError, "p: cannot connect calling: ConnectionRefusedError"),
        (aiohttp.ClientConnectionError(), UpstreamConnectionError, "p: cannot connect calling: ClientConnectionError"),
        (aiohttp.ClientResponseError(None, ()), UpstreamConnectionError,  # type: ignore[arg-type]
         "p: cannot connect calling: ClientResponseError"),
    ],
)
def test_transport_failures_map_into_the_taxonomy(exc: BaseException, kind: type[Exception], message: str) -> None:
    err = transport_error(exc, "p", "calling")
    assert type(err) is kind
    assert str(err) == message
    assert err.provider == "p"


def test_anything_else_is_raised_as_it_is() -> None:
    with pytest.raises(ValueError, match="not transport"):
        transport_error(ValueError("not transport"), "p", "calling")
