"""The child process that runs llama.cpp's server: ``python -m foundry_tui.local.serve``.

Why a child process and not a thread: `xllamacpp.Server(params)` loads the model while
holding the GIL (measured: the whole 0.6 s load, so the UI would freeze), a CPU without
AVX2 dies of SIGILL (which no Python code can catch), and ending a process is the one way
to be sure that no llama.cpp thread or socket outlives the app.

Protocol (JSON, one object per line):

- stdin, first line: ``{"model": PATH, "alias": NAME, "api_key": KEY, "n_ctx": N,
  "cache_ram_mib": N, "threads": N | null, "threads_batch": N | null}`` (threads: for
  generating, threads_batch: for reading the prompt; null: llama.cpp's choice). The key travels on stdin, never in argv.
- stdout: ``{"event": "ready", "address": "http://127.0.0.1:PORT", "pid": PID}`` once the
  model is loaded, or ``{"event": "error", "kind": "import" | "load" | "config",
  "detail": TEXT}`` and exit status 1.
- stdin again: a line ``stop`` (or end of file, which also happens when the app dies) stops
  the server, joins its threads and exits 0.

llama.cpp's own output goes to this process's stderr, which the parent points at a file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import IO, Any


def _emit(channel: IO[str], **event: Any) -> None:
    channel.write(json.dumps(event) + "\n")
    channel.flush()


def _wait_for_stop() -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            return


def main() -> int:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so anything
    # llama.cpp prints can never corrupt the protocol or reach the app's terminal.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the app decides when this stops

    try:
        config = json.loads(sys.stdin.readline() or "{}")
        model = str(config["model"])
        alias = str(config["alias"])
        api_key = str(config["api_key"])
        n_ctx = int(config["n_ctx"])
        cache_ram_mib = int(config.get("cache_ram_mib", 128))
        threads = config.get("threads")
        threads_batch = config.get("threads_batch")
    except (ValueError, KeyError, TypeError) as error:
        _emit(channel, event="error", kind="config", detail=f"bad start-up message: {error}")
        return 1

    try:
        import xllamacpp
    except ImportError as error:
        _emit(channel, event="error", kind="import", detail=str(error))
        return 1

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.model_alias = {alias}  # a set, not a string
    params.api_keys = [api_key]
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # any free port
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cache_prompt = True  # a follow-up turn re-reads only what is new
    params.cache_ram_mib = cache_ram_mib
    params.verbosity = -1
    params.ui = False
    params.endpoint_slots = False
    params.endpoint_metrics = False
    if isinstance(threads, int) and threads > 0:
        params.cpuparams.n_threads = threads
    if isinstance(threads_batch, int) and threads_batch > 0:
        params.cpuparams_batch.n_threads = threads_batch
    elif isinstance(threads, int) and threads > 0:
        params.cpuparams_batch.n_threads = threads
    try:
        server = xllamacpp.Server(params)
    except (RuntimeError, OSError, ValueError, MemoryError) as error:
        # llama.cpp's refusal (a file that is not a model: RuntimeError). Anything else is
        # a bug here: it ends the child, which the parent reports as crashed.
        _emit(channel, event="error", kind="load", detail=str(error))
        return 1
    _emit(channel, event="ready", address=server.listening_address, pid=os.getpid())
    try:
        _wait_for_stop()
    finally:
        del server  # ~Server stops the HTTP server and joins llama.cpp's threads
    _emit(channel, event="stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
