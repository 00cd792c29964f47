"""Child processes that end with the process that started them, however it ends.

A command that starts programs of its own (`edgewatch demo`: mosquitto, an agent) must not leave
them behind, holding ports and sessions, when it is stopped — and SIGKILL runs no clean-up at all.
So on Linux each such child is started through this module:

    python -m common.lifeline PARENT_PID -- PROGRAM ARG...

which asks the kernel to send it SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`; the
request survives the exec), checks that its parent is still PARENT_PID (had the parent died before
the request was in place, nobody would ever send the signal: it exits instead), and then becomes
PROGRAM: same pid, same stdio, PROGRAM's own handling of SIGTERM, which every program the demo
starts treats as "stop cleanly".

The kernel sends the signal when the *thread* that started the child ends: start children from a
thread that lives as long as they should (the demo starts them from its main thread).

This covers direct children. Their own children watch their parent themselves: the collector's
MQTT process ends when the pipe to its parent closes (`collector/mqtt_process.py`). Elsewhere than
Linux, `command()` returns the program unchanged: the children still stop with an orderly stop of
their parent, but not after a SIGKILL of it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def available() -> bool:
    return sys.platform.startswith("linux")


def command(argv: Sequence[str], parent: int | None = None) -> list[str]:
    """`argv`, wrapped so that the program gets SIGTERM when `parent` (default: this process) dies."""
    if not available():
        return list(argv)
    return [sys.executable, "-m", "common.lifeline", str(os.getpid() if parent is None else parent), "--", *argv]


def arm(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel for `signum` when this process's parent (thread) ends. OSError if refused."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")


def main(args: Sequence[str]) -> int:
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        print("usage: python -m common.lifeline PARENT_PID -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    parent, program = int(args[0]), list(args[2:])
    arm()
    if os.getppid() != parent:  # the parent is already gone: nobody is left to stop the program
        return 1
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        print(f"{program[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
