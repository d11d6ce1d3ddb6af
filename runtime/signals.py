"""Stopping cleanly on a signal, the one way every long job here does it (runtime run, train).

The first Ctrl-C (SIGINT) or SIGTERM (how systemd, docker and `timeout` stop a process) only asks the job to stop:
`requested` turns true and `signum` says which came, and the job stops at its next safe point (the frame in
hand, the batch in hand), closing and saving what it has. A second one raises KeyboardInterrupt at once.
Only the main thread receives signals; elsewhere this is inert.

    with StopRequest() as stop:
        while not stop.requested:
            ...
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signum = None
        self.previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
