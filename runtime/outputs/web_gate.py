"""The browser view's gate (web.py): the view accepts its own connections, and every byte a client sends passes
a Connection here before aiohttp's, so that the view stays up on an open network.

- A request's head must be whole within 5 s of its first byte and hold at most 8 KB; a connection with no
  request in progress is closed after 10 s; a request must be GET or HEAD, without a body, with one Host header
  naming this server (the bound address; on the loopback 127.0.0.1, localhost or ::1; bound to every address,
  any IP address, this machine's name and NAME.local; and the names given with hosts=, --web-host): a name
  that resolves here from a page elsewhere (DNS rebinding) is refused with 421. Refusals are a short 4xx
  written here, never a traceback.
- On Linux the kernel hands a connection over once its first bytes are there (TCP_DEFER_ACCEPT; a silent one after
  DEFER_S), so a viewer's request is there to be peeked at; one handed over before them (past DEFER_S, or by a SYN
  cookie when the queue of handshakes is full) that would be closed waits YOUNG_S for them first, a few at a time.
  Every connection waiting in the kernel's queue is taken as it comes (the queue never stalls behind a flood, so a
  viewer's connection is never dropped there), and held or closed by a fair share. At most 128 are held at once,
  fewer under a low file limit (half the descriptors free when it opened), and 16 from one address (an IPv6 /64
  counts as one). At either limit a new connection takes the place of one that is not in a request (a viewer's
  stream never is): first one whose token was wrong, then one that has made no request with the token, then one idle
  between requests; within each, one from the address that holds the most (the new one counted), its own address
  first where they hold as many, oldest first. So a flood from some addresses closes its own connections, not a
  viewer's. A connection younger than YOUNG_S (its request may not be read yet) is closed only for a client that
  will hold fewer, or for a new connection whose first bytes, peeked at accept, are a request with the token (a
  viewer behind the flood's own address: an SSH tunnel, a NAT); where none can make room the new one waits a few
  over the cap, or is closed at accept (a reset: no transport, no task). A connection in a request that has not
  shown the token makes room too once YOUNG_S old; a client's next request waits until its last answer has gone, and
  requests sent ahead are bounded to MAX_HEAD (one that sends requests and takes no answer holds nothing for long).
  Out of file descriptors at accept(), it closes such connections, accepts again in a moment and holds fewer for a
  minute.
- Errors are logged once per kind, then counted in one line per kind a minute at most, never as tracebacks.
- Every answer carries a Content-Security-Policy (no inline script: the page's script is /page.js; no frames),
  X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and no version banner.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import re
import socket
import struct
import time

from ..errors import printable

try:
    import resource
except ImportError:  # not on Windows: no file limit to read there
    resource = None

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
MAX_CONNECTIONS = 128  # at once, and fewer under a low file limit (connection_cap)
MIN_CONNECTIONS = 8
PER_CLIENT = 16  # connections from one address (an IPv6 /64 is one client: its owner has all of it)
HEADER_S = 5.0  # a request's head, from its first byte to its blank line
IDLE_S = 10.0  # a connection with no request in progress, or its last answer not yet taken
MAX_HEAD = 8192  # bytes of a request's head
MAX_FIELDS = 64  # header lines in a head
YOUNG_S = 0.1  # a new connection's time to have its request read, unless its client holds more than another's
SWEEP_S = 0.5  # how often the deadlines are checked
LOG_EVERY_S = 60.0  # after its first line, one line per kind of error at most this often
SHORT_S = 60.0  # after running out of file descriptors, hold fewer connections for this long
BACKLOG = 512  # the kernel's queue (Linux caps it at net.core.somaxconn)
ACCEPT_BATCH = 64  # connections taken from it in one turn of the loop
DEFER_S = 1  # Linux's TCP_DEFER_ACCEPT: a silent connection waits this long in the kernel, holding no descriptor
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
        self.paused = False  # the transport's buffer is full: the client is not taking its answers
        self.guessed = False  # has made a request with a wrong token: its 401 is on its way, then it is closed

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
        self.paused = True
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self):
        self.paused = False
        if self.inner is not None:
            self.inner.resume_writing()
        self.gate.loop.call_soon(self.feed)

    def eof_received(self):
        if self.inner is not None and self.state in ("sent", "busy"):
            return self.inner.eof_received()
        return None  # the transport closes

    def data_received(self, data):
        if self.inner is None or self.state == "closing":
            return
        self.pending += data
        self.feed()
        if len(self.pending) > MAX_HEAD and self.state != "closing":  # requests far ahead of their answers
            self.drop("closed: requests sent far ahead of their answers")

    def feed(self):
        """Hand aiohttp the next whole head, checked, if one is there, no request is in progress and the last
        answer has gone (a client that sends requests and takes no answer holds no request in aiohttp: the
        sweep tries again, and IDLE_S closes it)."""
        if self.inner is None or self.state not in ("idle", "head") or not self.pending:
            return
        if self.paused or self.transport.get_write_buffer_size():
            if not self.paused:  # no resume_writing() will come for a buffer under its high-water mark
                self.gate.loop.call_later(0.05, self.feed)
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
    with the limits on them (the module's docstring): per_client from one client, self.cap at once, past which
    a new connection takes the place of victim()'s or is closed at once. accept() out of file descriptors is
    out_of_files(). The deadlines are swept every SWEEP_S."""

    def __init__(self, loop, handler, hosts, log):
        self.loop, self.handler, self.hosts, self.log = loop, handler, hosts, log
        self.conns = {}  # Connection -> None: an ordered set, oldest first
        self.clients = {}  # client -> its connections
        self.most = self.cap = connection_cap()
        self.per_client = min(PER_CLIENT, max(2, self.most // 2))
        self.spare = max(2, self.most // 16)  # held over the cap while those that could make room are young
        self.token_in = None  # a request head's bytes -> whether it carries the token (WebOutput's)
        self.parked, self.parking = {}, max(4, self.most // 8)  # socket -> (client, timer): _park's
        self.short_since = None  # when accept() last ran out of file descriptors
        self.listeners, self.paused, self.trimming = [], None, None

    async def listen(self, host, port):
        """Bind and listen on host's addresses (as loop.create_server would), accepting as they come. The kernel's
        queue holds no descriptor of this process: it can be long, and is emptied as fast as it fills."""
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            self.listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == getattr(socket, "AF_INET6", None):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if hasattr(socket, "TCP_DEFER_ACCEPT"):  # Linux: a connection is taken once its first bytes are here
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_S)
            sock.bind(address)
            sock.listen(BACKLOG)
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
        for timer in (self.paused, self.trimming):
            if timer is not None:
                timer.cancel()
        for sock in self.listeners:
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())
            sock.close()
        for sock in list(self.parked):
            self._release(sock)
            sock.close()
        for conn in list(self.conns):
            conn.drop()

    def _accept(self, listener):
        for _ in range(ACCEPT_BATCH):
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

    def vouched(self, sock):
        """Whether a new connection's first bytes, already here, are a request with the token (peeked: left for
        aiohttp to read); where there is no token, any request. None: no byte has come yet. A viewer's
        connection then makes room even while every other one is young, which a flood of silent connections
        from its own address is."""
        try:
            sock.setblocking(False)
            first = sock.recv(MAX_HEAD, socket.MSG_PEEK)
        except BlockingIOError:
            return None
        except OSError:  # gone
            return False
        return self.token_in is not None and self.token_in(first)

    def _take(self, sock, client, waited=False):
        """A new connection from client: held, in the place of victim()'s at a limit, or else closed at once;
        one that would be closed while none of its bytes have come waits for them first (_park), once."""
        own = self.clients.get(client, 0) >= self.per_client
        if own or len(self.conns) >= self.cap:
            proof = self.vouched(sock)
            victim = self.victim(client, own, proof is True)
            if victim is not None:
                victim.drop("closed a connection to make room: over %d%s" % ((self.per_client, " from one address")
                                                                             if own else (self.cap, "")))
            elif own or len(self.conns) >= self.cap + self.spare:
                if proof is None and not waited:
                    return self._park(sock, client)
                return self._refuse(sock, client, "over %d connections%s, none of which can make room"
                                    % ((self.per_client, " from one address") if own else (self.cap, "")))
            elif self.trimming is None:  # those that could make room are young: held over the cap until they can
                self.trimming = self.loop.call_later(YOUNG_S, self.trim)
        conn = Connection(self, client)
        self.conns[conn] = None
        self.clients[client] = self.clients.get(client, 0) + 1
        sock.setblocking(False)
        self.loop.create_task(self._open(conn, sock))
        return None

    def _park(self, sock, client):
        """Hold a connection that would be closed, but whose first bytes have not come (the kernel handed it over
        before them: past DEFER_S, or by a SYN cookie when its queue of handshakes was full), until they come or
        YOUNG_S has passed, then decide again (_take). It holds a descriptor and no transport; at most
        self.parking are held, and when full the oldest is decided at once."""
        if len(self.parked) >= self.parking:
            self._unpark(next(iter(self.parked)))
        self.parked[sock] = (client, self.loop.call_later(YOUNG_S, self._unpark, sock))
        self.loop.add_reader(sock.fileno(), self._unpark, sock)

    def _unpark(self, sock):
        client = self._release(sock)
        if client is not None:  # not decided already
            self._take(sock, client, waited=True)

    def _release(self, sock):
        """A parked socket's client, its timer and reader gone; None where it is not parked."""
        client, timer = self.parked.pop(sock, (None, None))
        if timer is not None:
            timer.cancel()
            self.loop.remove_reader(sock.fileno())
        return client

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

    def victim(self, client=None, own=False, vouched=False):
        """The connection to close to make room for a new one from client (None: for none in particular, when
        descriptors run short), or None. Never a request with the token (a viewer's stream). First one whose token
        was wrong; then one that has not shown the token (in a request too, once YOUNG_S past its head: a client
        that sends requests and takes no answers); then one idle between requests (a keep-alive: a viewer's next
        fetch opens another; where there is no token every request counts as having it). Within
        each, one from the client that holds the most, the new one counted (a fair share: a flood from some
        addresses closes its own); where they hold as many, client's own first; then the oldest. None where that
        one is younger than YOUNG_S (its request may not be read yet) and its client holds no more than client
        will (or it is client's own), unless the new one is vouched for (its peeked request carries the token):
        the new one then waits a few over the cap (trim) or is refused, and no other candidate is tried, so a
        connection of a smaller holder is never closed instead. own: client's only (it holds per_client)."""
        best, best_key = None, None
        now, after = time.monotonic(), self.clients.get(client, 0) + 1 if client is not None else 0
        for conn in self.conns:
            if own and conn.client != client:
                continue
            if conn.guessed:
                kind = 0
            elif not conn.proven and (conn.state not in ("busy", "sent") or now - conn.since >= YOUNG_S):
                kind = 1  # in a request without the token: a client pinning requests whose answers it never takes
            elif conn.proven and conn.state == "idle":
                kind = 2
            else:
                continue
            held, mine = self.clients[conn.client], conn.client == client
            key = (kind, -held - mine, not mine, conn.opened if kind == 1 and conn.state != "sent" else conn.since)
            if best_key is None or key < best_key:
                best, best_key = conn, key
        if best is not None and best_key[0] and not vouched and now - best_key[3] < YOUNG_S and \
                (own or -best_key[1] <= after):
            return None  # its request may not be read yet, and the new one has not shown the token either
        return best

    def forget(self, conn):
        if conn in self.conns:
            del self.conns[conn]
            left = self.clients.pop(conn.client) - 1
            if left:
                self.clients[conn.client] = left

    def trim(self):
        """Back to the cap: victim()'s connections closed while over it (a new one was held over it, or the cap
        came down)."""
        self.trimming = None
        while len(self.conns) > self.cap:
            victim = self.victim()
            if victim is None:  # all in requests: the sweep tries again
                break
            victim.drop("closed a connection to make room: over %d" % self.cap)

    def sweep(self):
        now = time.monotonic()
        for conn in list(self.conns):
            due, why = conn.deadline()
            if due is not None and now > due:
                conn.drop(why)
            elif conn.pending and conn.state == "idle":
                conn.feed()  # a head held while its last answer was unsent
        if self.short_since is not None and now - self.short_since > SHORT_S:
            self.cap, self.short_since = self.most, None
        self.trim()
        self.log.flush()

    def out_of_files(self):
        """accept() found no file descriptor free (the rest of the process has them): connections that victim()
        picks closed (their descriptors are free once the loop has gone round), accepting again in a moment,
        and fewer held for SHORT_S, so that a viewer with the token gets in."""
        for sock in list(self.parked):  # decided now: each holds a descriptor
            self._unpark(sock)
        self.cap = max(MIN_CONNECTIONS, min(self.cap, len(self.conns) - 4))
        self.short_since, closed = time.monotonic(), 0
        while closed < 4 or len(self.conns) > self.cap:
            victim = self.victim()
            if victim is None:
                break
            victim.drop()
            closed += 1
        self._pause(0.02 if closed else 0.05)
        self.log.note("out of file descriptors at accept()", "closed %d connections without the token; at most %d "
                      "held for %d s" % (closed, self.cap, SHORT_S))
