"""Run a Python program whose wall clock is off by an amount the test changes while it runs, the way
a device's clock jumps when NTP corrects it or its RTC battery fails:

    python -m tests.reliability.jumping_clock OFFSET_FILE MODULE [args...]

`time.time()` returns the true time plus the number of seconds in OFFSET_FILE (re-read when the file
changes); the monotonic clock is untouched, as it is on a real device. libfaketime would do this
for any program, but its release in Debian 12 cannot leave the monotonic clock alone without
breaking `time.sleep`."""

from __future__ import annotations

import os
import runpy
import sys
import time


class JumpingClock:
    def __init__(self, path: str, real: object = time.time) -> None:
        self._path = path
        self._real = real
        self._stamp: float | None = None
        self._offset = 0.0

    def __call__(self) -> float:
        try:
            stamp = os.stat(self._path).st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                with open(self._path, encoding="ascii") as fh:
                    self._offset = float(fh.read().strip() or 0)
            except (OSError, ValueError):
                pass  # mid-write: keep the previous offset
        return self._real() + self._offset  # type: ignore[operator]


def main() -> None:
    path, module, *args = sys.argv[1:]
    time.time = JumpingClock(path)  # before the program imports anything that binds time.time
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
