"""``ep serve``'s log handler: the request lines logged in one turn of the event loop reach the stream in one
write (one system call), none waits longer than that turn, and lines keep their order."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

from execution_platform.gateway.logs import JsonFormatter, TurnFlushedHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(stream: CountingStream) -> logging.Logger:
    handler = TurnFlushedHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.turn_flushed.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _messages(stream: CountingStream) -> list[str]:
    return [line.split('"msg":"')[1].split('"')[0] for line in stream.getvalue().splitlines()]


async def test_the_lines_of_one_turn_are_written_together_when_the_turn_ends() -> None:
    stream = CountingStream()
    log = _logger(stream)
    for n in range(3):
        log.info("request %d", n)
    assert stream.writes == 0
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.writes == 1
    assert _messages(stream) == ["request 0", "request 1", "request 2"]
    log.info("request 3")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.writes == 2 and _messages(stream)[-1] == "request 3"


async def test_a_line_from_another_thread_goes_out_at_once_after_those_waiting() -> None:
    stream = CountingStream()
    log = _logger(stream)
    log.info("on the loop")
    worker = threading.Thread(target=log.info, args=("from a thread",))
    worker.start()
    worker.join()
    assert _messages(stream) == ["on the loop", "from a thread"]


def test_without_a_running_loop_every_line_is_written_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream)
    log.info("one")
    assert _messages(stream) == ["one"]
    log.handlers[0].flush()
    assert _messages(stream) == ["one"]
