"""The local model's engine process: llama.cpp's OpenAI-compatible HTTP server (``xllamacpp``).

Run as ``python -m execution_platform.providers.local_engine --model FILE.gguf --port 0 ...``. It is a
child of the gateway (or SDK client) on purpose: a native crash, an out-of-memory kill or a hang of the
inference engine takes this process down, never the gateway, and the parent's supervisor restarts it.

Protocol with the parent: once the server listens, one line ``READY http://127.0.0.1:PORT`` on stdout.
The process then waits on stdin and exits when it is closed, so it never outlives its parent (even one
killed with SIGKILL, whose end of the pipe the kernel closes).
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="local_engine", description=__doc__)
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--port", type=int, default=0, help="loopback port; 0 picks a free one")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0 means all cores")
    parser.add_argument("--ctx", type=int, default=4096, help="context size shared by the slots")
    parser.add_argument("--parallel", type=int, default=2, help="concurrent request slots")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        print(f"ERROR model file not found: {args.model}", flush=True)
        return 2
    import xllamacpp  # only ever imported here, in the child

    threads = args.threads or os.cpu_count() or 1
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # a bad GGUF, a port in use: tell the parent instead of a traceback
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"READY {server.listening_address}", flush=True)
    _quiet_stderr()  # the per-request log lines would otherwise pile up in the parent's log file
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    return 0


def _quiet_stderr() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


if __name__ == "__main__":
    os._exit(main())  # skip interpreter teardown: the server's native threads do not join cleanly
