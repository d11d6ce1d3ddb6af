"""Where results go, each opened from a URI (open_output), as jetson-inference's videoOutput is:

    out.mp4 (.avi, .mkv ...)         a video file of annotated frames
    out.jsonl                        one JSON line per frame (rotated with --jsonl-max-mb: files.py)
    display://0                      a window with the overlay (q or Esc stops the run)
    rtp://HOST:PORT                  H.264 over RTP/UDP to HOST (view: gst-launch-1.0 udpsrc port=PORT ...)
    rtsp://@:PORT/PATH               an RTSP server here (gst-rtsp-server), as jetson-inference serves it:
                                     view with any player at rtsp://THIS_HOST:PORT/PATH
    http://HOST:PORT                 a web page with the live annotated stream and statistics (web.py)
    udp://HOST:PORT                  each result as a command to a vehicle, with a watchdog and a heartbeat
    serial:///dev/ttyX?baud=N          (vehicle/sender.py): the same line format over UDP or a serial port
    ros2://TOPIC                     the same commands as ROS 2 drive messages (vehicle/ros2.py; where rclpy is)
                                     (these three are the vehicle wing's: it adds them to OPENERS)

A file's name may hold any bytes (files.py); the other URIs must be UTF-8 (one line otherwise).

Every output is an Output: write(frame, result) and close(), and a context manager. Outputs that show
frames (wants_overlay) take the annotated frame when the caller has drawn it once for all of them (run()
does), and otherwise draw the overlay on a copy themselves. H.264 comes from the Jetson's hardware encoder
where the board has one (Orin Nano has none), else x264enc.
"""

from __future__ import annotations

import os
import stat

from .. import images
from ..errors import UserError, printable
from ..images import utf8
from .base import Output
from .display import has_screen, open_display
from .files import JsonlOutput, add_rotation_options, open_file, path_of, rotation
from .network import open_stream
from .web import open_web

OPENERS = {"display": open_display, "rtp": open_stream, "rtsp": open_stream, "http": open_web,
           "file": open_file}  # scheme -> opener; the vehicle wing adds udp://, serial:// and ros2:// (vehicle/)

__all__ = ["OPENERS", "Output", "add_rotation_options", "has_screen", "open_output", "open_outputs"]


def open_output(uri, fps=30.0, web_token=None, control=None, rotation=None, web_hosts=()) -> Output:
    """The output a URI names (the table in this module's docstring); a path with no scheme is a file.
    web_token: the token http:// asks for (default: none on the loopback, else a random one, printed);
    control: the vehicle wing's ControlSettings for udp://, serial:// and ros2:// (default: its defaults);
    rotation: how FILE.jsonl rotates (files.Rotation; default: never); web_hosts: names besides the bound
    address that http:// answers to (--web-host)."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else "file"
    if scheme not in OPENERS:
        raise UserError("--output %s: unknown kind of output (use a video file, FILE.jsonl, display://0, "
                        "rtp://HOST:PORT, rtsp://@:PORT/PATH, http://HOST:PORT, udp://HOST:PORT, "
                        "serial:///dev/ttyX?baud=N or ros2://TOPIC)" % uri)
    if scheme != "file" and not utf8(uri):  # a file's name may hold any bytes; addresses, devices and topics not
        raise UserError("--output %s: not UTF-8, which an address, device or topic must be" % printable(uri))
    return OPENERS[scheme](uri, fps=fps, web_token=web_token, settings=control, rotation=rotation,
                           web_hosts=web_hosts)


def open_outputs(uris=(), jsonl=None, display=False, fps=30.0, web_token=None, control=None, jsonl_max_mb=None,
                 jsonl_keep=None, web_hosts=()) -> list:
    """The outputs a run asked for (--output URIs, and the --jsonl and --display shorthands); if one cannot
    open, those already open are closed again. jsonl_max_mb and jsonl_keep (--jsonl-max-mb, --jsonl-keep) rotate
    every JSON-lines file among them (files.LineFile)."""
    uris = list(uris)
    rotate = rotation(jsonl_max_mb, jsonl_keep)
    if rotate is not None and not jsonl and not any(_is_jsonl(uri) for uri in uris):
        raise UserError("--jsonl-max-mb rotates JSON-lines files: give --jsonl FILE (or --output FILE.jsonl) too")
    _one_writer_each([path_of(u) for u in uris if _is_file(u)] + ([path_of(jsonl)] if jsonl else []))
    opened = []
    try:
        for uri in uris:
            opened.append(open_output(uri, fps, web_token, control, rotate, web_hosts))
        if jsonl:  # --jsonl FILE is JSON lines whatever the file's name (/dev/stdout, a FIFO, ...)
            opened.append(JsonlOutput(path_of(jsonl), rotate))
        if display:
            opened.append(open_output("display://0", fps))
    except BaseException:
        for out in opened:
            out.close()
        raise
    return opened


def _one_writer_each(paths):
    """UserError where two outputs name one existing plain file (two writers would cut and rotate each other's
    lines), by its device and inode, as the user named it; streams (/dev/stdout, a FIFO) are the user's affair."""
    seen = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:  # not there yet: compare the names as they will be
            key = ("new", os.path.abspath(path))
        else:
            if not stat.S_ISREG(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
        if key in seen:
            raise UserError("%s is named as two outputs (as %s too): give each output a file of its own"
                            % (images.shown(path), images.shown(seen[key])))
        seen[key] = path


def _is_file(uri):
    return "://" not in uri or uri.lower().startswith("file://")


def _is_jsonl(uri):
    return _is_file(uri) and path_of(uri).lower().endswith(".jsonl")
