"""``ep serve``'s log handler: request lines written in one turn of the event loop reach the stream in one
flush (one system call), and nothing waits longer than that turn."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

from execution_platform.gateway.logs import JsonFormatter, TurnFlushedHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.flushed_text = ""

    def flush(self) -> None:
        self.flushes += 1
        self.flushed_text = self.getvalue()


def _logger(stream: CountingStream) -> logging.Logger:
    handler = TurnFlushedHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.turn_flushed.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


async def test_lines_of_one_turn_are_flushed_together_when_the_turn_ends() -> None:
    stream = CountingStream()
    log = _logger(stream)
    for n in range(3):
        log.info("request %d", n)
    assert stream.flushes == 0
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.flushes == 1
    assert [line.count('"msg":"request') for line in stream.flushed_text.splitlines()] == [1, 1, 1]
    log.info("request 3")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.flushes == 2 and "request 3" in stream.flushed_text


def test_without_a_running_loop_every_line_is_flushed_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream)
    log.info("one")
    assert stream.flushes == 1 and "one" in stream.flushed_text
    worker = threading.Thread(target=log.info, args=("from a thread",))
    worker.start()
    worker.join()
    assert stream.flushes == 2 and "from a thread" in stream.flushed_text
