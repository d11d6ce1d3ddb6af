"""systemd's notify protocol (sd_notify(3)) in a few lines, with no dependency: a service of Type=notify says
READY=1 once it runs, and, where its unit sets WatchdogSec=, WATCHDOG=1 at least every half of that, or systemd
kills it (SIGABRT) and restarts it (Restart=on-failure): a hung loop is restarted.

    watchdog = Watchdog.from_env()      # NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID; outside systemd: does nothing
    watchdog.ready("running")           # READY=1, once: start-up is over
    while ...:
        watchdog.alive()                # every frame, every tick: a clock check; a datagram only when one is due
    watchdog.stopping()
    watchdog.close()

Each message is one datagram of NAME=VALUE lines to the AF_UNIX datagram socket NOTIFY_SOCKET names (a path, or
an abstract socket when it starts with @). alive() sends nothing before ready(): systemd arms the watchdog at the
first WATCHDOG=1 even while the service is still starting, and a start (a TensorRT engine built at the first
run) is bounded by the unit's TimeoutStartSec= instead. A socket that is missing or refuses is one line on stderr,
then silence: the unit's watchdog, if any, restarts the service, which is what a broken link to systemd needs.
"""

from __future__ import annotations

import os
import socket
import sys
import time

STATUS_EVERY_S = 1.0  # status() sends at most this often; between, the newest text waits for the next datagram


class Watchdog:
    """sd_notify for one process: ready(), alive(), status(), stopping(), close(). Never raises."""

    def __init__(self, address=None, interval=None, clock=time.monotonic):
        self.address = address    # what sendto() takes: a path (str) or an abstract name (bytes from a NUL)
        self.interval = interval  # seconds between WATCHDOG=1 (half of WATCHDOG_USEC), or None
        self.clock = clock
        self.sock = None
        self.is_ready = self.ready_sent = self.complained = False
        self.next_alive = self.next_status = 0.0
        self.pending_status = None

    @classmethod
    def from_env(cls, environ=os.environ) -> "Watchdog":
        """The notifier systemd's environment asks for: a no-op one outside systemd (no NOTIFY_SOCKET), and no
        WATCHDOG=1 where WATCHDOG_USEC is unset or WATCHDOG_PID names another process (a child that inherited
        it)."""
        return cls(_address(environ.get("NOTIFY_SOCKET", "")), _interval(environ))

    @property
    def enabled(self):
        return self.address is not None

    def ready(self, status=None):
        """READY=1 (and STATUS=status), once; from now on alive() keeps the watchdog fed."""
        if not self.enabled or self.is_ready:
            return
        self.is_ready = True
        now = self.clock()
        self.ready_sent = self._send("READY=1", self.pending_status if status is None else status, now)
        self._schedule(now, self.ready_sent)  # READY=1 resets systemd's watchdog too

    def alive(self):
        """WATCHDOG=1 when one is due (every WATCHDOG_USEC/2): otherwise a clock read and a comparison."""
        if not self.is_ready:
            return
        now = self.clock()
        if now < self.next_alive:
            return
        message = "WATCHDOG=1" if self.interval is not None else None
        if not self.ready_sent:  # READY=1 was refused: say it again, or systemd times the start out
            message = "READY=1" + ("\nWATCHDOG=1" if message else "")
        sent = self._send(message, self.pending_status, now)
        self.ready_sent = self.ready_sent or sent
        self._schedule(now, sent)

    def _schedule(self, now, sent):
        """The next alive() that sends: half the watchdog's period on, sooner after a datagram the socket refused
        (a busy systemd), and every STATUS_EVERY_S where there is no watchdog (a status or READY=1 may wait)."""
        step = self.interval if self.interval is not None else STATUS_EVERY_S
        self.next_alive = now + (step if sent else min(step, 0.5))

    def status(self, text):
        """STATUS=text (`systemctl status` shows it), at most every STATUS_EVERY_S; a newer text in between
        replaces the waiting one, which goes out with the next datagram."""
        if not self.enabled:
            return
        now = self.clock()
        self.pending_status = " ".join(str(text).split())  # one line
        if now >= self.next_status:
            self._send(None, self.pending_status, now)
        elif self.is_ready:
            self.next_alive = min(self.next_alive, self.next_status)

    def stopping(self):
        """STOPPING=1: the service is shutting down (systemctl shows "deactivating")."""
        if self.enabled:
            self._send("STOPPING=1", None, self.clock())

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.address, self.is_ready = None, None, False

    def _send(self, message, status, now):
        """One datagram: message and STATUS=status; True when the socket took it."""
        lines = [message] if message else []
        if status is not None:
            lines.append("STATUS=" + status)
            self.pending_status, self.next_status = None, now + STATUS_EVERY_S
        if not lines:
            return True
        if self.address is None:  # closed
            return False
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.setblocking(False)  # a busy systemd must not stall the caller's loop: try again later
            self.sock.sendto("\n".join(lines).encode("utf-8", "replace") + b"\n", self.address)
            return True
        except (OSError, ValueError) as exc:
            if not self.complained:
                self.complained = True
                print("runtime: cannot notify systemd at %s: %s (not said again)"
                      % (_shown(self.address), getattr(exc, "strerror", None) or exc), file=sys.stderr, flush=True)
            return False


def _address(name):
    """NOTIFY_SOCKET as sendto() takes it: @NAME is Linux's abstract namespace (a NUL first); a path stays; None
    outside systemd or for what this does not speak (vsock:, relative paths)."""
    if name.startswith("@") and len(name) > 1:
        return b"\0" + os.fsencode(name[1:])
    if name.startswith("/"):
        return name
    return None


def _interval(environ):
    """Half of WATCHDOG_USEC in seconds, when the watchdog is this process's; else None."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        pid = environ.get("WATCHDOG_PID")
        if usec <= 0 or (pid and int(pid) != os.getpid()):
            return None
    except ValueError:
        return None
    return usec / 2e6


def _shown(address):
    return "@" + os.fsdecode(address[1:]) if isinstance(address, bytes) else str(address)
