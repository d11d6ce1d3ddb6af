"""http://HOST:PORT: watch a run from a browser: the annotated frames as a live MJPEG stream and the pipeline's
health, updating without a reload (aiohttp, the `web` extra), on a server that stays up on an open network.

    /            the page (its own HTML, CSS and JavaScript: nothing fetched from the network)
    /page.js     the page's script, /page.css its style (the same for everyone: they need no token)
    /stream.mjpg the annotated frames, multipart/x-mixed-replace JPEG, newest frame only
    /stats       the live statistics as JSON (FPS over the last 5 s and over the run, latency p50/p95 of the
                 last 300 frames, drops, per-stage ms, backend, model, power mode on a Jetson)
    /healthz     200 while frames flow (one within the last 2 s), else 503

The server never slows the pipeline: write() only keeps a reference to the newest annotated frame; a thread of
its own encodes it to JPEG, once whatever the number of viewers, only while someone watches, at most 15 times a
second (the pipeline may run at hundreds of frames a second; a person watching needs no more, and every frame
sent wakes the server and each viewer) and less often where encoding would take more than 3% of one core (a
large frame on a small board); each viewer
gets the newest JPEG when it is ready for one (a slow viewer skips frames, one that stops reading for 5 s is
dropped and its socket closed), and a viewer that leaves costs nothing. It binds 127.0.0.1 unless a host is
given; bound beyond the loopback it requires a token (`?token=` or `Authorization: Bearer`), printed at the start
unless --web-token gives one, and answers 401 without it. Only its routes exist; at most 16 viewers.
A token goes into the printed address and the page's requests as it is, so --web-token takes 1 to 256 of the
characters a URL carries unescaped (letters A-Z a-z, digits, - . _ ~; a random one is such too) and refuses
anything else in one line: a token that was not UTF-8 made every request a 500 with a traceback.

On an open network (Gate and Connection: the view accepts its own connections, and every byte a client sends
passes through them before aiohttp's):
- a request's head must be whole within 5 s of its first byte and hold at most 8 KB; a connection with no
  request in progress is closed after 10 s; a request must be GET or HEAD, without a body, with one Host header
  naming this server (the bound address; on the loopback 127.0.0.1, localhost or ::1; bound to every address,
  any IP address, this machine's name and NAME.local; and the names given with hosts=, --web-host): a name
  that resolves here from a page elsewhere (DNS rebinding) is refused with 421. Refusals are a short 4xx
  written here, never a traceback;
- at most 128 connections at once, fewer under a low file limit (half the descriptors free when it opened), and
  16 from one address (an IPv6 /64 counts as one). Past the second, a new connection is closed at accept (a
  reset: no transport, no task); past the first, the oldest connection that has made no request with the token
  is closed to make room once it has had 0.25 s to send one, so idle or slow connections cannot lock out a
  viewer. Out of file descriptors at accept(), it closes such connections, accepts again in a moment and holds
  fewer for a minute;
- errors are logged once per kind, then counted in one line per kind a minute at most, never as tracebacks;
- every answer carries a Content-Security-Policy (no inline script: the page's script is /page.js; no frames),
  X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and no version banner; the page sets text with
  textContent, never as HTML, so a model's name holding markup shows as text.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
import string
import struct
import sys
import threading
import time

from .. import platform
from ..errors import UserError, printable, require
from ..uri import port_number, without_credentials
from .base import Output

try:
    import resource
except ImportError:  # not on Windows: no file limit to read there
    resource = None

MAX_VIEWERS = 16
STALL_S = 5.0  # a viewer that has not taken a frame for this long is dropped, its socket closed
FLOWING_S = 2.0  # /healthz: a frame within this long
RECENT = 300  # frames the live latency percentiles cover
STREAM_FPS = 15  # the most frames a second the stream carries (the newest each time), whatever the pipeline's rate
ENCODE_SHARE = 0.03  # and fewer where encoding them would take more than this share of one core
BOUNDARY = "frame"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986's unreserved: never escaped
MAX_TOKEN = 256

MAX_CONNECTIONS = 128  # at once, and fewer under a low file limit (connection_cap)
MIN_CONNECTIONS = 8
PER_CLIENT = 16  # connections from one address (an IPv6 /64 is one client: its owner has all of it)
HEADER_S = 5.0  # a request's head, from its first byte to its blank line
IDLE_S = 10.0  # a connection with no request in progress, or its last answer not yet taken
MAX_HEAD = 8192  # bytes of a request's head
MAX_FIELDS = 64  # header lines in a head
GRACE_S = 0.25  # a new connection's time to send its head before it may be closed to make room for another
SHORT_GRACE_S = 0.1  # and while file descriptors are short
SWEEP_S = 0.5  # how often the deadlines are checked
LOG_EVERY_S = 60.0  # after its first line, one line per kind of error at most this often
SHORT_S = 60.0  # after running out of file descriptors, hold fewer connections for this long
BACKLOG = 128
PUBLIC = ("/page.js", "/page.css")  # the same for everyone: no token
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Server": "runtime",  # aiohttp's own names its version
}
REASONS = {400: "Bad Request", 405: "Method Not Allowed", 421: "Misdirected Request",
           431: "Request Header Fields Too Large"}
_REQUEST_LINE = re.compile(r"([A-Z]{1,16}) (/[!-~]*) HTTP/1\.[01]\Z")
_FIELD = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([ -~\t\x80-\xff]*)\Z")


def token_problem(token):
    """Why token cannot be the web output's token (said without the token, a secret), or None when it can."""
    if isinstance(token, str) and 1 <= len(token) <= MAX_TOKEN and all(c in TOKEN_CHARS for c in token):
        return None
    return ("a token goes into the address unescaped: give 1 to %d letters A-Z a-z, digits, '-', '.', '_' or '~'"
            % MAX_TOKEN)


_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\Z")
_PORT = re.compile(r":[0-9]{1,5}\Z")


def host_problem(name):
    """Why name cannot be a name the web output answers to (--web-host), or None when it can."""
    if isinstance(name, str) and len(name) <= 253 and (_NAME.match(name.lower().rstrip(".")) or _is_ip(name)):
        return None
    return "give a host name (letters, digits, '-' and '.') or an IP address, as a browser puts it in the address"


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _host_name(value):
    """The name in a Host header's value (lower case, without a port or the brackets of an IPv6 address), or None
    when it is not a Host header's form."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not _PORT.match(rest):
        return None
    return name.rstrip(".") or None


class Hosts:
    """The names a request's Host header may give, so that a page elsewhere whose name an attacker points at this
    address (DNS rebinding) gets nothing: the bound address; on the loopback, 127.0.0.1, localhost and ::1 (an
    SSH tunnel's port on the laptop may differ, so the port is not checked); bound to every address, any IP
    address (no name to rebind), this machine's name and NAME.local; and the names given."""

    def __init__(self, bound, names=()):
        self.any_ip = bound in WILDCARD
        allowed = {bound.lower()} | {n.lower().rstrip(".") for n in names}
        if bound == "localhost" or (_is_ip(bound) and ipaddress.ip_address(bound).is_loopback):
            allowed |= set(LOOPBACK)
        if self.any_ip:
            name = socket.gethostname().lower()
            allowed |= {"localhost", name, name + ".local"}
        self.names = frozenset(allowed)

    def allows(self, value):
        name = _host_name(value)
        return name is not None and (name in self.names or (self.any_ip and _is_ip(name)))


SINGLE_FIELDS = frozenset(("host", "content-length", "content-type", "content-location", "content-range",
                           "etag", "from", "if-modified-since", "if-range", "if-unmodified-since", "location",
                           "max-forwards", "referer", "retry-after", "user-agent", "authorization",
                           "proxy-authorization", "range", "transfer-encoding", "expect", "origin"))


def head_problem(head, hosts):
    """(status, why) when a request's head (bytes up to its blank line) is not one this server takes, else None:
    GET or HEAD, a path, HTTP/1.x, well-formed header lines, one Host that hosts allows, no body."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    request = _REQUEST_LINE.match(lines[0])
    if request is None:
        return 400, "a malformed request line"
    if request.group(1) not in ("GET", "HEAD"):
        return 405, "a method other than GET or HEAD"
    if len(lines) > MAX_FIELDS + 1:
        return 431, "over %d header lines" % MAX_FIELDS
    host, seen = None, set()
    for line in lines[1:]:
        field = _FIELD.match(line)
        if field is None:
            return 400, "a malformed header line"
        name, value = field.group(1).lower(), field.group(2).strip()
        if name in SINGLE_FIELDS and name in seen:  # aiohttp's parser refuses these twice, with its own page
            return 400, "two %s headers" % ("Host" if name == "host" else name)
        seen.add(name)
        if name == "host":
            host = value
        elif name == "transfer-encoding" or (name == "content-length" and value != "0"):
            return 400, "a request with a body"
    if host is None:
        return 400, "no Host header"
    if not hosts.allows(host):
        return 421, "a Host this server does not answer to"
    return None


def client_of(peer):
    """Who a connection is from, for the per-client cap: its IP address; an IPv6 address's /64 (whoever has one
    address of a /64 usually has all of it)."""
    address = peer[0] if isinstance(peer, (tuple, list)) and peer else str(peer)
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return str(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip) if ip.version == 4 else "%x::/64" % (int(ip) >> 64)


def connection_cap():
    """How many connections the view holds at once: MAX_CONNECTIONS, or under a low file limit half the file
    descriptors still free when it opens (the rest are the pipeline's and the other outputs')."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        used = len(os.listdir("/proc/self/fd"))
    except (AttributeError, OSError):  # no resource module, or no /proc
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, (soft - used) // 2))


class RateLog:
    """Errors said once per kind, as one line without a traceback; after that counted, and said again with the
    count at most once every LOG_EVERY_S seconds (a flood of bad requests is a few lines a minute)."""

    MAX_KINDS = 64

    def __init__(self, out):
        self.out = out
        self.kinds = {}  # kind -> [times since it was last said, when it was last said]

    def note(self, kind, detail=""):
        now = time.monotonic()
        seen = self.kinds.get(kind)
        if seen is None and len(self.kinds) >= self.MAX_KINDS:
            kind, detail = "other errors", ""
            seen = self.kinds.get(kind)
        if seen is None:
            self.kinds[kind] = [0, now]
            self._say(kind + (": " + detail if detail else ""))
            return
        seen[0] += 1
        if now - seen[1] >= LOG_EVERY_S:
            self._say_count(kind, seen, now)

    def flush(self, every=LOG_EVERY_S):
        """Say the counts not yet said that are at least every seconds old (0: all of them)."""
        now = time.monotonic()
        for kind, seen in self.kinds.items():
            if seen[0] and now - seen[1] >= every:
                self._say_count(kind, seen, now)

    def _say_count(self, kind, seen, now):
        self._say("%s: %d more in the last %d s" % (kind, seen[0], round(now - seen[1])))
        seen[0], seen[1] = 0, now

    def _say(self, text):
        if self.out is not None:
            try:
                print("web: " + printable(text)[:300], file=self.out, flush=True)
            except (OSError, ValueError):  # stderr closed: nothing more to do
                pass


class _ToRateLog(logging.Handler):
    """aiohttp's server logger's records, to a RateLog: the message and the exception's kind, no traceback."""

    def __init__(self, ratelog):
        super().__init__(logging.WARNING)
        self.ratelog = ratelog

    def emit(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        template = re.sub(r"%[-#0-9.]*[a-z]", "...", str(record.msg))  # the kind: the message without its values
        kind = "server: %s%s" % (template, " (%s)" % type(exc).__name__ if exc is not None else "")
        try:
            detail = record.getMessage()
        except (TypeError, ValueError):
            detail = template
        self.ratelog.note(kind, "%s: %s" % (detail, exc) if exc is not None else detail)


def server_logger(ratelog):
    logger = logging.Logger("runtime.web.server", logging.WARNING)  # not the global one: nothing else sees it
    logger.propagate = False
    logger.addHandler(_ToRateLog(ratelog))
    return logger


class Connection(asyncio.Protocol):
    """One client's connection, in front of aiohttp's handler for it. It hands aiohttp one whole request head at
    a time, checked (head_problem), and answers a bad one itself with a short 4xx. States: idle (no request),
    head (one being read: HEADER_S from its first byte), sent (aiohttp has it), busy (a route's handler runs: the
    middleware says so), closing."""

    def __init__(self, gate, client):
        self.gate, self.client, self.transport, self.inner = gate, client, None, None
        self.state, self.opened, self.started = "idle", time.monotonic(), None
        self.since = self.opened
        self.pending, self.scanned = bytearray(), 0
        self.proven = False  # has made a request with the token (any request, where there is no token)

    def connection_made(self, transport):
        self.transport = transport
        if self.state == "closing":  # dropped while its transport was being made
            transport.abort()
            return
        self.inner = self.gate.handler()
        self.inner.connection_made(transport)

    def connection_lost(self, exc):
        self.gate.forget(self)
        inner, self.inner = self.inner, None
        if inner is not None:
            inner.connection_lost(exc)

    def pause_writing(self):
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self):
        if self.inner is not None:
            self.inner.resume_writing()

    def eof_received(self):
        if self.inner is not None and self.state in ("sent", "busy"):
            return self.inner.eof_received()
        return None  # the transport closes

    def data_received(self, data):
        if self.inner is None or self.state == "closing":
            return
        self.pending += data
        if self.state in ("sent", "busy"):
            if len(self.pending) > MAX_HEAD:  # requests sent far ahead of their answers: held here, bounded
                self.drop("closed: requests sent far ahead of their answers")
            return
        self.feed()

    def feed(self):
        """Hand aiohttp the next whole head, checked, if one is there and no request is in progress."""
        if self.inner is None or self.state not in ("idle", "head") or not self.pending:
            return
        if self.state == "idle":
            self.state, self.started = "head", time.monotonic()
        end = self.pending.find(b"\r\n\r\n", max(0, self.scanned - 3))
        if end < 0 or end + 4 > MAX_HEAD:
            self.scanned = len(self.pending)
            if end >= 0 or len(self.pending) > MAX_HEAD:
                self.refuse(431, "a request head over %d bytes" % MAX_HEAD)
            return
        head = bytes(self.pending[:end + 4])
        del self.pending[:end + 4]
        self.scanned = 0
        problem = head_problem(head, self.gate.hosts)
        if problem is not None:
            self.refuse(*problem)
            return
        self.state, self.since = "sent", time.monotonic()
        self.inner.data_received(head)

    def refuse(self, status, why):
        """A short answer, written here (not aiohttp's, which would log a traceback and name its version), then
        the connection closed."""
        self.gate.log.note("refused: %s (%d)" % (why, status), "from " + self.client)
        body = ("%d: %s\n" % (status, why)).encode()
        head = ["HTTP/1.1 %d %s" % (status, REASONS[status]), "Content-Type: text/plain; charset=utf-8",
                "Content-Length: %d" % len(body), "Connection: close"]
        head += ["%s: %s" % pair for pair in SECURITY_HEADERS.items()] + (["Allow: GET, HEAD"] if status == 405 else [])
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.state, self.since = "closing", time.monotonic()
        self.transport.close()  # once written; the sweep aborts it if the client does not take it

    def request_started(self):
        self.state = "busy"

    def request_done(self):
        if self.inner is None or self.state == "closing":
            return
        self.state, self.since, self.started = "idle", time.monotonic(), None
        self.gate.loop.call_soon(self.feed)  # a head that came meanwhile

    def deadline(self):
        """(when it is closed unless its state changes first, what to log then), or (None, None): a route's
        handler runs, and sees to its own time (a viewer that stops reading is dropped by the stream)."""
        if self.state == "head":
            return self.started + HEADER_S, "closed: a request head took over %g s" % HEADER_S
        if self.state == "busy":
            return None, None
        return self.since + (HEADER_S if self.state == "closing" else IDLE_S), None

    def drop(self, why=None):
        if why:
            self.gate.log.note(why, "from " + self.client)
        self.gate.forget(self)
        self.state = "closing"
        if self.transport is not None:
            self.transport.abort()


class Gate:
    """The listening sockets, with an accept loop of its own, and every connection the view holds, oldest first,
    with the limits on them: per_client from one client, past which a new connection is closed at once (no
    transport, no task: a close with a reset); self.cap at once, past which the oldest that has made no request
    with the token (and is not in one) is closed to make room. accept() out of file descriptors is
    out_of_files(). The deadlines are swept every SWEEP_S."""

    def __init__(self, loop, handler, hosts, log):
        self.loop, self.handler, self.hosts, self.log = loop, handler, hosts, log
        self.conns = {}  # Connection -> None: an ordered set, oldest first
        self.clients = {}  # client -> its connections
        self.most = self.cap = connection_cap()
        self.per_client = min(PER_CLIENT, max(2, self.most // 2))
        self.short_since = None  # when accept() last ran out of file descriptors
        self.listeners, self.paused = [], None

    async def listen(self, host, port):
        """Bind and listen on host's addresses (as loop.create_server would), accepting as they come. The kernel's
        queue and each round of accept() are no longer than cap: accepting can never take more descriptors than
        the half of them that connection_cap left aside."""
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            self.listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == getattr(socket, "AF_INET6", None):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(min(BACKLOG, self.cap))
            sock.setblocking(False)
        self._resume()

    def _resume(self):
        self.paused = None
        for sock in self.listeners:
            if sock.fileno() >= 0:
                self.loop.add_reader(sock.fileno(), self._accept, sock)

    def _pause(self, seconds):
        for sock in self.listeners:
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())
        if self.paused is not None:
            self.paused.cancel()
        self.paused = self.loop.call_later(seconds, self._resume)

    def close(self):
        if self.paused is not None:
            self.paused.cancel()
        for sock in self.listeners:
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())
            sock.close()
        for conn in list(self.conns):
            conn.drop()

    def _accept(self, listener):
        for _ in range(self.cap):
            if len(self.conns) >= self.cap and not self._make_room():
                return
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.out_of_files()
                elif exc.errno != errno.ECONNABORTED:  # one that left before it was taken: nothing to say
                    self.log.note("accept() failed (%s)" % errno.errorcode.get(exc.errno, exc.errno))
                    self._pause(1.0)
                return
            self._take(sock, client_of(peer))

    def _make_room(self):
        """At the cap: the oldest connection without the token closed for the next one, if it has had GRACE_S to
        send a request; else the next ones wait in the kernel's queue a while (refused, a viewer among them would
        be refused too)."""
        victim = self.victim()
        if victim is None:
            self._pause(SHORT_GRACE_S / 2)
            return False
        victim.drop("closed the oldest connection without the token: over %d connections" % self.cap)
        return True

    def _take(self, sock, client):
        if self.clients.get(client, 0) >= self.per_client:
            victim = self.victim(client, 0.0)  # the address's own oldest idle one makes room, with no grace (a
            if victim is None:                 # NAT, a tunnel: a viewer may share its address with whoever holds
                # the rest; churning them only closes their own)
                return self._refuse(sock, client, "over %d connections from one address" % self.per_client)
            victim.drop("closed the oldest idle connection from one address: over %d from it" % self.per_client)
        conn = Connection(self, client)
        self.conns[conn] = None
        self.clients[client] = self.clients.get(client, 0) + 1
        sock.setblocking(False)
        self.loop.create_task(self._open(conn, sock))
        return None

    async def _open(self, conn, sock):
        try:
            await self.loop.connect_accepted_socket(lambda: conn, sock)
        except Exception as exc:  # gone before its transport was made
            self.forget(conn)
            sock.close()
            self.log.note("a connection lost as it opened (%s)" % type(exc).__name__)

    def _refuse(self, sock, client, why):
        self.log.note("refused a connection: " + why, "from " + client)
        try:  # a reset: nothing left in TIME_WAIT here for it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()

    def victim(self, client=None, grace=None):
        """The connection to close to make room (of client's only, when given): the oldest that has made no
        request with the token and is not in one, if it is older than GRACE_S (a viewer's new connection gets the
        time to send its request); else the one idle longest between requests (a keep-alive connection: a
        viewer's next fetch opens another; where there is no token every request counts as having it), if idle
        for GRACE_S; else None. A request in progress (a viewer's stream) is never closed."""
        if grace is None:
            grace = GRACE_S if self.short_since is None else SHORT_GRACE_S
        now, idle = time.monotonic(), None
        for conn in self.conns:
            if client is not None and conn.client != client:
                continue
            if not conn.proven and conn.state not in ("busy", "sent"):
                return conn if now - conn.opened >= grace else None
            if conn.state == "idle" and now - conn.since >= grace and (idle is None or conn.since < idle.since):
                idle = conn
        return idle

    def forget(self, conn):
        if conn in self.conns:
            del self.conns[conn]
            left = self.clients.pop(conn.client) - 1
            if left:
                self.clients[conn.client] = left

    def sweep(self):
        now = time.monotonic()
        for conn in list(self.conns):
            due, why = conn.deadline()
            if due is not None and now > due:
                conn.drop(why)
        if self.short_since is not None and now - self.short_since > SHORT_S:
            self.cap, self.short_since = self.most, None
        self.log.flush()

    def out_of_files(self):
        """accept() found no file descriptor free (the rest of the process has them): the oldest connections
        without the token closed (their descriptors are free once the loop has gone round), accepting again
        in a moment, and fewer held for SHORT_S, each given less time to send its request (SHORT_GRACE_S), so
        that a viewer with the token gets in."""
        self.cap = max(MIN_CONNECTIONS, min(self.cap, len(self.conns) - 4))
        self.short_since, closed = time.monotonic(), 0
        while closed < 4 or len(self.conns) > self.cap:
            victim = self.victim()
            if victim is None:
                break
            victim.drop()
            closed += 1
        self._pause(0.02 if closed else SHORT_GRACE_S / 2)
        self.log.note("out of file descriptors at accept()", "closed %d connections without the token; at most %d "
                      "held for %d s" % (closed, self.cap, SHORT_S))


class WebOutput(Output):
    wants_overlay = True

    def __init__(self, host, port, token=None, log=sys.stderr, hosts=()):
        self.web = require("aiohttp.web", "web", "serving http:// (the browser view)")
        self.cv2 = require("cv2", "opencv", "encoding frames for the browser view")
        if token is not None and token_problem(token):
            raise UserError("--web-token: %s" % token_problem(token))
        for name in hosts:
            if host_problem(name):
                raise UserError("--web-host %s: %s" % (printable(name), host_problem(name)))
        self.host, self.port, self.log = host, port, log
        self.token = token if token else (None if host in LOOPBACK else secrets.token_urlsafe(12))
        self.hosts, self.ratelog, self.gate = Hosts(host, hosts), RateLog(log), None
        self.stats, self.info = None, {}
        self.frame, self.frame_seq, self.frame_time = None, 0, 0.0  # newest annotated frame (a reference)
        self.jpeg, self.jpeg_seq = None, 0
        self.viewers = 0  # connected to /stream.mjpg
        self.waiting = 0  # of them, those waiting for the next JPEG (the others are still sending the last one)
        self.closing = False
        self.wake = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error = None
        self.server = threading.Thread(target=self._serve, name="web", daemon=True)
        self.server.start()
        self.ready.wait(10)
        if self.error is not None:
            raise UserError("cannot serve %s: %s" % (self.url, self.error))
        self.encoder = threading.Thread(target=self._encode, name="web-encoder", daemon=True)
        self.encoder.start()
        shown = self.url + ("/?token=%s" % self.token if self.token else "/")
        if log is not None:
            print("web: watch at %s%s" % (shown, "" if self.host in LOOPBACK else
                                          " (from another machine: this host's address instead of %s)" % self.host),
                  file=log)

    @property
    def url(self):
        return "http://%s:%d" % (self.host if ":" not in self.host else "[%s]" % self.host, self.port)

    def bind(self, model, source, stats):
        self.stats = stats
        self.info = {"model": model.bundle.describe(), "source": without_credentials(source.uri),
                     "backend": "%s (%s)" % (model.backend.name, model.backend.detail)}

        if platform.is_jetson():
            self.info["power_mode"] = platform.power_mode()

    # -- the pipeline's side: keep a reference, nothing more ----------------------------------------------
    def write(self, frame, result, annotated=None):
        self.frame = self.annotate(frame, result, annotated)
        self.frame_seq += 1
        self.frame_time = time.monotonic()
        if self.waiting:
            with self.wake:
                self.wake.notify()

    def close(self):
        self.closing = True
        with self.wake:
            self.wake.notify()
        self.encoder.join(5)  # first: it hands JPEGs to the loop, which must still be there
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.server.join(5)

    # -- the encoder thread: the newest frame, once, while someone watches --------------------------------
    def _encode(self):
        encoded, next_due, cost = 0, 0.0, 0.0
        while not self.closing:
            with self.wake:  # a new frame, and a viewer ready for one (one stuck in a write is not)
                while not self.closing and (not self.waiting or self.frame_seq == encoded):
                    self.wake.wait(0.5)
            wait = next_due - time.monotonic()
            if wait > 0:  # at most STREAM_FPS a second: a person watching needs no more, the pipeline keeps the CPU
                time.sleep(wait)
            if self.closing:
                return
            seq, frame = self.frame_seq, self.frame
            started, cpu = time.monotonic(), time.thread_time()
            ok, data = self.cv2.imencode(".jpg", frame, [self.cv2.IMWRITE_JPEG_QUALITY, 80])
            spent = time.thread_time() - cpu  # this thread's CPU time: what the pipeline's threads lost
            cost = spent if not cost else 0.9 * cost + 0.1 * spent
            next_due = started + max(1.0 / STREAM_FPS, cost / ENCODE_SHARE)
            encoded = seq
            if ok and not self.closing:
                self.jpeg, self.jpeg_seq = data.tobytes(), seq
                self.loop.call_soon_threadsafe(self._announce)

    def _announce(self):
        self.new_jpeg.set()
        self.new_jpeg = asyncio.Event()

    # -- the server thread: aiohttp on its own event loop, behind the Gate ----------------------------------
    def _serve(self):
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(self._loop_error)
        self.runner = self.sweeper = None
        try:
            self.loop.run_until_complete(self._start())
        except Exception as exc:  # the port in use, an address not on this machine: told to the opener
            self.error = getattr(exc, "strerror", None) or str(exc)
            self._stop()  # closed here: a loop left to the garbage collector printed a traceback at exit
            self.ready.set()
            return
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            self._stop()

    async def _start(self):
        web = self.web
        self.new_jpeg = asyncio.Event()
        app = web.Application(middlewares=[self._middleware()], client_max_size=4096)
        for path, route in (("/", self._page), ("/page.js", self._script), ("/page.css", self._style),
                            ("/stream.mjpg", self._stream), ("/stats", self._stats), ("/healthz", self._health)):
            app.router.add_get(path, route)
        app.on_response_prepare.append(self._secure)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=server_logger(self.ratelog),
                                    keepalive_timeout=IDLE_S, max_line_size=MAX_HEAD, max_field_size=MAX_HEAD)
        await self.runner.setup()
        self.gate = Gate(self.loop, self.runner.server, self.hosts, self.ratelog)
        await self.gate.listen(self.host, self.port)
        self.sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self):
        while True:
            await asyncio.sleep(SWEEP_S)
            self.gate.sweep()

    def _stop(self):
        async def stop():
            if self.sweeper is not None:
                self.sweeper.cancel()
            if self.gate is not None:
                self.gate.close()
            await asyncio.sleep(0)  # their connection_lost
            if self.runner is not None:
                await self.runner.cleanup()

        try:
            self.loop.run_until_complete(stop())
        except Exception as exc:
            self.ratelog.note("closing the server (%s)" % type(exc).__name__, str(exc))
        self.ratelog.flush(0)
        self.loop.close()

    def _loop_error(self, loop, context):
        """The event loop's errors, every kind logged once and then counted (asyncio's default printed a
        traceback each time: out of file descriptors at accept(), many a second; the Gate accepts now)."""
        exc = context.get("exception")
        self.ratelog.note("event loop: %s%s" % (context.get("message", "an error"),
                                                " (%s)" % type(exc).__name__ if exc is not None else ""),
                          str(exc) if exc is not None else "")

    def _middleware(self):
        @self.web.middleware
        async def guard(request, handler):
            conn = request.transport.get_protocol() if request.transport is not None else None
            conn = conn if isinstance(conn, Connection) else None
            if conn is not None:
                conn.request_started()
            try:
                return await self._answer(request, handler, conn)
            finally:
                if conn is not None:
                    conn.request_done()
        return guard

    async def _answer(self, request, handler, conn):
        """The token rule, before any route but the page's script and style; aiohttp's HTTP errors as short ones."""
        web = self.web
        if self.token is not None and request.path not in PUBLIC:
            given = request.query.get("token") or request.headers.get("Authorization", "").replace("Bearer ", "", 1)
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
                self.ratelog.note("refused: a request without the right token (401)",
                                  "from " + conn.client if conn else "")
                return web.Response(status=401, text="401: a token is needed (?token=...)\n")
        if conn is not None and request.path not in PUBLIC:
            conn.proven = True
        try:
            return await handler(request)
        except web.HTTPException as exc:  # 404 and the like: no page of aiohttp's
            return web.Response(status=exc.status, text="%d: %s\n" % (exc.status, exc.reason))

    async def _secure(self, request, response):
        response.headers.update(SECURITY_HEADERS)

    async def _page(self, request):
        return self.web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _script(self, request):
        return self.web.Response(text=PAGE_JS, content_type="text/javascript", headers={"Cache-Control": "no-store"})

    async def _style(self, request):
        return self.web.Response(text=PAGE_CSS, content_type="text/css", headers={"Cache-Control": "no-store"})

    def _snapshot(self):
        stats = self.stats
        snap = dict(self.info, frames=self.frame_seq, viewers=self.viewers,
                    flowing=self.frame_seq > 0 and time.monotonic() - self.frame_time < FLOWING_S)
        if stats is not None and stats.frames:
            snap.update(fps=round(stats.current_fps(), 2), fps_average=round(stats.fps, 2), dropped=stats.dropped,
                        invalid=stats.invalid,
                        latency_ms={"p50": round(stats.percentile(50, RECENT), 3),
                                    "p95": round(stats.percentile(95, RECENT), 3)},
                        stages_ms={k: round(v, 3) for k, v in stats.stages().items()})
        return snap

    async def _stats(self, request):
        return self.web.json_response(self._snapshot(), headers={"Cache-Control": "no-store"})

    async def _health(self, request):
        flowing = self.frame_seq > 0 and time.monotonic() - self.frame_time < FLOWING_S
        return self.web.json_response({"flowing": flowing, "frames": self.frame_seq},
                                      status=200 if flowing else 503)

    async def _stream(self, request):
        web = self.web
        if self.viewers >= MAX_VIEWERS:
            return web.Response(status=503, text="503: %d viewers already\n" % MAX_VIEWERS)
        response = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=" + BOUNDARY,
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        if request.method == "HEAD":  # the headers only: an endless body would be read as the next answer
            return response
        self.viewers += 1
        sent = 0
        try:
            while not self.closing:
                if self.jpeg_seq == sent:
                    self.waiting += 1
                    with self.wake:
                        self.wake.notify()
                    try:
                        await asyncio.wait_for(self.new_jpeg.wait(), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    finally:
                        self.waiting -= 1
                jpeg, sent = self.jpeg, self.jpeg_seq
                part = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY.encode(),
                                                                                             len(jpeg))
                await asyncio.wait_for(response.write(part + jpeg + b"\r\n"), STALL_S)
        except asyncio.TimeoutError:  # stalled: its socket closed now (left open, it held a descriptor and the
            if request.transport is not None:  # unsent frames for ever, past the cap on viewers)
                request.transport.abort()
        except (ConnectionError, asyncio.CancelledError):
            pass  # a departed viewer, or the server closing
        finally:
            self.viewers -= 1
        return response


def open_web(uri, fps=30.0, web_token=None, web_hosts=(), **_):
    """The http:// output; web_hosts: names besides the bound address that a request's Host may give."""
    rest = uri[len("http://"):].rstrip("/")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]") if sep else rest
    if not sep or port_number(port) is None or not host:
        raise UserError("--output %s: give http://HOST:PORT, as in http://127.0.0.1:8080 (0.0.0.0 for every "
                        "address, with a token; PORT 1 to 65535)" % uri)
    return WebOutput(host, port_number(port), web_token, hosts=tuple(web_hosts or ()))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>runtime</title>
<link rel="stylesheet" href="/page.css">
<script src="/page.js" defer></script>
</head><body>
<img id="view" alt="the annotated camera view">
<div id="stats"><h1>runtime</h1><table id="table"></table><p id="state">connecting...</p></div>
</body></html>
"""

PAGE_CSS = """body{margin:0;background:#111;color:#ddd;font:14px system-ui,sans-serif;display:flex;flex-wrap:wrap;
gap:16px;padding:16px}
#view{max-width:100%;height:auto;background:#000;border:1px solid #333}
#stats{min-width:260px}table{border-collapse:collapse}td{padding:2px 10px 2px 0}
td:first-child{color:#888}.bad{color:#f66}.ok{color:#6c6}h1{font-size:16px;margin:0 0 8px}
"""

# Every value is set as text (textContent), never as HTML: a model's name is the bundle author's to choose.
PAGE_JS = """"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const q = token ? "?token=" + encodeURIComponent(token) : "";
document.getElementById("view").src = "/stream.mjpg" + q;
function row(k, v) {
  const tr = document.createElement("tr");
  for (const text of [k, v]) {
    const td = document.createElement("td");
    td.textContent = String(text);
    tr.appendChild(td);
  }
  return tr;
}
function state(text, kind) {
  const st = document.getElementById("state");
  st.textContent = text;
  st.className = kind;
}
async function refresh() {
  try {
    const s = await (await fetch("/stats" + q, {cache: "no-store"})).json();
    const rows = [row("model", s.model || ""), row("source", s.source || ""), row("backend", s.backend || "")];
    if (s.power_mode) rows.push(row("power mode", s.power_mode));
    rows.push(row("frames", s.frames), row("FPS (last 5 s)", s.fps === undefined ? "-" : s.fps.toFixed(1)));
    if (s.latency_ms) rows.push(row("latency p50 / p95",
                                    s.latency_ms.p50.toFixed(1) + " / " + s.latency_ms.p95.toFixed(1) + " ms"));
    rows.push(row("dropped", s.dropped === undefined ? "-" : s.dropped), row("viewers", s.viewers));
    if (s.stages_ms) for (const [k, v] of Object.entries(s.stages_ms)) rows.push(row(k, v.toFixed(2) + " ms"));
    const table = document.getElementById("table");
    table.textContent = "";
    for (const r of rows) table.appendChild(r);
    state(s.flowing ? "frames flowing" : "no frames", s.flowing ? "ok" : "bad");
  } catch (e) {
    state("the run has ended", "bad");
  }
}
refresh(); setInterval(refresh, 1000);
"""
