"""A pseudo-terminal pair: the simulator holds the master end, the driver opens the slave
path like any serial port (`/dev/pts/N`), so the driver's pyserial code runs unchanged."""

from __future__ import annotations

import os
import tty


class PtyPair:
    def __init__(self) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)  # no echo, no line discipline: bytes pass untouched
        tty.setraw(self.master_fd)
        self.slave_path = os.ttyname(self._slave_fd)
        # Keeping our own slave fd open means the master never sees EIO when the driver
        # closes and reopens the port (as it does after a reset).

    def close(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
