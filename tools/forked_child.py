"""Run one fuzz case in a forked child under a memory cap and a timeout (the fuzz tools' runner).

The child reports `(kind, detail)` as JSON over a pipe; a child that dies by a signal or exits
without an answer is a "crash", one that does not answer in time a "hang".
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable


def address_space() -> int:
    """This process's current virtual size in bytes (0 when /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_forked(case: Callable[[], tuple[str, str]], timeout_s: float,
               mem_bytes: int) -> tuple[str, str]:
    """`case()` in a forked child whose RLIMIT_AS is the address space it inherits plus
    `mem_bytes` (numba and LLVM map a lot up front); adds "crash" and "hang" outcomes."""
    import resource

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            cap = address_space() + mem_bytes
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            try:
                res = case()
            except MemoryError:
                res = ("crash", "MemoryError (over the memory cap)")
            os.write(w, json.dumps(res).encode()[:4000])
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout_s
    chunks = []
    hung = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    if hung:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(r)
    if hung:
        return "hang", f"no answer in {timeout_s:g} s"
    if chunks:
        with contextlib.suppress(ValueError):
            kind, detail = json.loads(b"".join(chunks))
            return kind, detail
    if os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}"
    return "crash", f"child exited {os.WEXITSTATUS(status)} without an answer"
