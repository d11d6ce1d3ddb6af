"""http://HOST:PORT: watch a run from a browser: the annotated frames as a live MJPEG stream and the pipeline's
health, updating without a reload (aiohttp, the `web` extra), on a server that stays up on an open network.

    /            the page (its own HTML, CSS and JavaScript: nothing fetched from the network)
    /page.js     the page's script, /page.css its style (the same for everyone: they need no token)
    /stream.mjpg the annotated frames, multipart/x-mixed-replace JPEG, newest frame only
    /stats       the live statistics as JSON (FPS over the last 5 s and over the run, latency p50/p95 of the
                 last 300 frames, drops, per-stage ms, backend, model(s), power mode on a Jetson; a detector's
                 objects, a segmentation network's free space, with several networks each other one's rate)
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
A token goes into the printed address and the page's requests as it is, so --web-token takes 16 to 256 of the
characters a URL carries unescaped (letters A-Z a-z, digits, - . _ ~: at least 96 bits where they are random; a
random one is 16 such characters) and refuses anything else in one line: a token that was not UTF-8 made every
request a 500 with a traceback, and a short one could be guessed. A wrong token is answered after WRONG_TOKEN_S
and its connection closed, which bounds the guessing to a few tries a second per connection (it was 1,873 a
second on one).

On an open network every byte a client sends passes web_gate's Gate and Connection before aiohttp's: timeouts,
limits on connections, a fair share for each address, and checked request heads (web_gate.py says how).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import string
import sys
import threading
import time
import urllib.parse

from .. import platform
from ..errors import UserError, printable, require
from ..uri import port_number, without_credentials
from .base import Output
from . import web_gate
from .web_gate import LOOPBACK, SECURITY_HEADERS, Connection, Gate, Hosts, RateLog, host_problem, server_logger

MAX_VIEWERS = 16
STALL_S = 5.0  # a viewer that has not taken a frame for this long is dropped, its socket closed
FLOWING_S = 2.0  # /healthz: a frame within this long
RECENT = 300  # frames the live latency percentiles cover
STREAM_FPS = 15  # the most frames a second the stream carries (the newest each time), whatever the pipeline's rate
ENCODE_SHARE = 0.03  # and fewer where encoding them would take more than this share of one core
BOUNDARY = "frame"
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986's unreserved: never escaped
MIN_TOKEN, MAX_TOKEN = 16, 256
WRONG_TOKEN_S = 0.5  # a wrong token's 401 waits this long, then its connection is closed
PUBLIC = ("/page.js", "/page.css")  # the same for everyone: no token


def token_problem(token):
    """Why token cannot be the web output's token (said without the token, a secret), or None when it can."""
    if isinstance(token, str) and MIN_TOKEN <= len(token) <= MAX_TOKEN and all(c in TOKEN_CHARS for c in token):
        return None
    return ("a token goes into the address unescaped and must not be guessable: give %d to %d letters A-Z a-z, "
            "digits, '-', '.', '_' or '~'" % (MIN_TOKEN, MAX_TOKEN))


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
        self.objects = self.free_space = None  # a detector's objects, a segmentation's free space: for /stats
        self.networks, self.bound_at = None, time.monotonic()  # several networks: each one's rate, for /stats
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
        bundles = getattr(model, "bundles", None) or [model.bundle]  # several networks: each of them
        self.info = {"model": "; ".join(b.describe() for b in bundles), "source": without_credentials(source.uri),
                     "backend": "%s (%s)" % (model.backend.name, model.backend.detail)}
        self.networks = model if hasattr(model, "counts") else None  # the others' results, for /stats
        self.bound_at = time.monotonic()

        if platform.is_jetson():
            self.info["power_mode"] = platform.power_mode()

    # -- the pipeline's side: keep a reference, nothing more ----------------------------------------------
    def write(self, frame, result, annotated=None):
        self.frame = self.annotate(frame, result, annotated)
        objects = free = None  # a detector's count and a segmentation network's free space, for /stats
        for _, part in result.parts if result is not None else ():
            if part is not None and objects is None and part.get("detections") is not None:
                objects = len(part["detections"])
            if part is not None and free is None and part.get("free_space") is not None:
                free = part["free_space"]
        self.objects, self.free_space = objects, free
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
                                    keepalive_timeout=web_gate.IDLE_S, max_line_size=web_gate.MAX_HEAD,
                                    max_field_size=web_gate.MAX_HEAD)
        await self.runner.setup()
        self.gate = Gate(self.loop, self.runner.server, self.hosts, self.ratelog)
        self.gate.token_in = self._carries_token
        await self.gate.listen(self.host, self.port)
        self.sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self):
        while True:
            await asyncio.sleep(web_gate.SWEEP_S)
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
            if not self._has_token(request.query.getall("token", ()), request.headers.getall("Authorization", ())):
                self.ratelog.note("refused: a request without the right token (401)",
                                  "from " + conn.client if conn else "")
                if conn is not None:
                    conn.guessed = True  # the first to make room while it waits
                await asyncio.sleep(WRONG_TOKEN_S)  # a few guesses a second per connection, not thousands
                response = web.Response(status=401, text="401: a token is needed (?token=...)\n")
                response.force_close()  # and each on a new connection
                return response
        if conn is not None and request.path not in PUBLIC:
            conn.proven = True
        try:
            return await handler(request)
        except web.HTTPException as exc:  # 404 and the like: no page of aiohttp's
            return web.Response(status=exc.status, text="%d: %s\n" % (exc.status, exc.reason))

    def _carries_token(self, first):
        """Whether a new connection's first bytes are a whole request head with the token (?token= or a Bearer
        credential), or any whole head where there is no token: the gate lets such a connection make room
        (web_gate.Gate.vouched). The middleware still checks every request."""
        end = first.find(b"\r\n\r\n")
        if end < 0:
            return False
        if self.token is None:
            return True
        lines = first[:end].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if lines[0].count(" ") == 2 else ""
        tokens = [v for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query) if k == "token"]
        fields = [line.partition(":") for line in lines[1:]]
        return self._has_token(tokens, [value for name, _, value in fields if name.strip().lower() == "authorization"])

    def _has_token(self, tokens, authorizations):
        """Whether one of a request's ?token= values, or one of its Authorization headers' Bearer credentials,
        is the token (compared in constant time)."""
        given = list(tokens)
        for value in authorizations:
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                given.append(credentials.strip())
        return any(hmac.compare_digest(g.encode("utf-8", "replace"), self.token.encode()) for g in given)

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
        if self.objects is not None:
            snap["objects"] = self.objects
        if self.free_space is not None:
            snap["free_space"] = self.free_space
        if self.networks is not None:  # each other network's results a second since the run began
            elapsed = max(time.monotonic() - self.bound_at, 1e-6)
            snap["networks"] = {name: round(done / elapsed, 2) for name, (done, _) in self.networks.counts().items()}
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
    if (s.objects !== undefined) rows.push(row("objects", s.objects));
    if (s.free_space !== undefined) rows.push(row("free space", (100 * s.free_space).toFixed(0) + "% of the view"));
    if (s.networks) for (const [k, v] of Object.entries(s.networks)) rows.push(row(k, v.toFixed(1) + " results/s"));
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
