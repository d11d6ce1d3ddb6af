"""URIs as the runtime reads them: split one (a URI it cannot read is a one-line error) and read its port, for
every scheme that has one (udp://, http://, rtp://, rtsp://)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import UserError


def split(uri):
    """urlsplit, with a URI it cannot read (an unclosed [ of an IPv6 address) as a one-line UserError."""
    try:
        return urlsplit(uri)
    except ValueError as exc:
        raise UserError("%s: %s" % (uri, exc)) from None


def port_number(text):
    """A port as a URI gives it, 1 to 65535 in ASCII digits; None for anything else. The one parser of ports
    (udp://, http://, rtp://, rtsp://): int() takes '²'-like digits of other scripts (or raises on them), '+80' and
    ' 80', and urlsplit's .port does what the Python version does."""
    if not isinstance(text, str) or not 0 < len(text) <= 5 or any(c not in "0123456789" for c in text):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def port_text(netloc):
    """The port part of a URI's netloc (user@host:port, [v6]:port), '' when there is none."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        rest = hostport.partition("]")[2]
        return rest[1:] if rest.startswith(":") else ""
    return hostport.rpartition(":")[2] if ":" in hostport else ""


def without_credentials(uri):
    """The URI with any user:password@ removed from its authority (rtsp://admin:secret@cam/1 -> rtsp://cam/1),
    for what others may see: the browser view, systemd's status, logs."""
    scheme, sep, rest = str(uri).partition("://")
    if not sep:
        return str(uri)
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority:
        return str(uri)
    return scheme + sep + authority.rpartition("@")[2] + tail
