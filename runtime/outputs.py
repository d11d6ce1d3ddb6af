"""Where results go, each opened from a URI (open_output), as jetson-inference's videoOutput is:

    out.mp4 (.avi, .mkv ...)         a video file of annotated frames
    out.jsonl                        one JSON line per frame
    display://0                      a window with the overlay (q or Esc stops the run)
    rtp://HOST:PORT                  H.264 over RTP/UDP to HOST (view: gst-launch-1.0 udpsrc port=PORT ...)
    rtsp://@:PORT/PATH               an RTSP server here (gst-rtsp-server), as jetson-inference serves it:
                                     view with any player at rtsp://THIS_HOST:PORT/PATH

Every output is an Output: write(frame, result) and close(), and a context manager. Outputs that show
frames (wants_overlay) take the annotated frame when the caller has drawn it once for all of them (run()
does), and otherwise draw the overlay on a copy themselves. H.264 comes from the Jetson's hardware encoder
where the board has one (Orin Nano has none), else x264enc.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from .errors import UserError, native_stderr_silenced, require

VIDEO_EXTS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def _check_writable(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError("cannot write %s: folder %s does not exist" % (path, folder))
    if not os.access(folder, os.W_OK):
        raise UserError("cannot write %s: folder %s is not writable" % (path, folder))


class Output:
    """write(frame, result[, annotated]) for each frame, close() at the end (also on `with`).
    wants_overlay: it shows frames, drawn with the result; closed_by_user: its user asked to stop."""

    wants_overlay = False
    closed_by_user = False

    def write(self, frame, result, annotated=None):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def annotate(frame, result, annotated):
        """The frame with the overlay: the caller's, or drawn here on a copy (the frame stays as it was)."""
        if annotated is not None:
            return annotated
        from . import overlay

        truth = frame.truth.get("steering") if frame.truth else None
        return overlay.draw(frame.image.copy(), result, None, truth)


class VideoOutput(Output):
    """Annotated frames to a video file (opened at the first frame, when its size is known)."""

    wants_overlay = True

    def __init__(self, path, fps=30.0):
        ext = os.path.splitext(path)[1].lower()
        if ext not in VIDEO_EXTS:
            raise UserError("cannot write video %s: use one of %s" % (path, ", ".join(sorted(VIDEO_EXTS))))
        _check_writable(path)
        self.cv2 = require("cv2", "opencv", "writing video")
        self.path, self.fps, self.fourcc = path, fps, VIDEO_EXTS[ext]
        self.writer = None

    def write(self, frame, result, annotated=None):
        annotated = self.annotate(frame, result, annotated)
        if self.writer is None:
            h, w = annotated.shape[:2]
            fourcc = self.cv2.VideoWriter_fourcc(*self.fourcc)
            self.writer = self.cv2.VideoWriter(self.path, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError("OpenCV cannot write %s with codec %s" % (self.path, self.fourcc))
        self.writer.write(annotated)

    def close(self):
        if self.writer is not None:
            self.writer.release()


class JsonlOutput(Output):
    """One JSON object per frame: frame, timestamp (capture, epoch s), latency_ms, result, truth."""

    def __init__(self, path):
        _check_writable(path)
        self.path = path
        self.file = open(path, "w", buffering=1)  # line by line: a reader can follow a live run (tail -f)

    def write(self, frame, result, annotated=None):
        line = {"frame": frame.index, "timestamp": round(frame.timestamp, 6),
                "latency_ms": None if frame.latency_ms is None else round(frame.latency_ms, 3), "result": result}
        if frame.truth is not None:
            line["truth"] = frame.truth
        self.file.write(json.dumps(line) + "\n")

    def close(self):
        self.file.close()


class DisplayOutput(Output):
    """A window with the overlay; q or Esc stops the run."""

    wants_overlay = True

    def __init__(self, title="runtime"):
        self.cv2 = require("cv2", "opencv", "showing a window")
        self.title = title
        try:
            self.cv2.namedWindow(title, self.cv2.WINDOW_NORMAL)
        except self.cv2.error:
            raise UserError("this OpenCV cannot open a window (a headless build, or no display); "
                            "run with --no-display") from None
        self.closed_by_user = False

    def write(self, frame, result, annotated=None):
        self.cv2.imshow(self.title, self.annotate(frame, result, annotated))
        if self.cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed_by_user = True

    def close(self):
        self.cv2.destroyWindow(self.title)


def _free_udp_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """gst-rtsp-server in a thread of its own, relaying a local RTP stream at rtsp://@:port/path."""

    def __init__(self, port, path, relay_port):
        from . import gst

        try:
            import gi

            gi.require_version("Gst", "1.0")
            gi.require_version("GstRtspServer", "1.0")
            from gi.repository import GLib, Gst, GstRtspServer
        except (ImportError, ValueError) as exc:
            raise UserError("serving RTSP needs gst-rtsp-server's Python bindings (%s): on Debian/Ubuntu/JetPack "
                            "sudo apt install python3-gi gir1.2-gst-rtsp-server-1.0, in a venv made with "
                            "--system-site-packages" % exc) from None
        Gst.init(None)
        self.server = GstRtspServer.RTSPServer()
        self.server.set_service(str(port))
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(gst.rtsp_relay(relay_port))
        factory.set_shared(True)
        self.server.get_mount_points().add_factory("/" + path, factory)
        self.context = GLib.MainContext.new()
        self.source_id = self.server.attach(self.context)
        if not self.source_id:
            raise UserError("cannot serve RTSP on port %d (in use?)" % port)
        self.loop = GLib.MainLoop.new(self.context, False)
        self.thread = threading.Thread(target=self.loop.run, name="rtsp-server", daemon=True)
        self.thread.start()

    def close(self):
        self.loop.quit()
        self.thread.join(2.0)
        source = self.context.find_source_by_id(self.source_id)
        if source is not None:
            source.destroy()


class StreamOutput(Output):
    """Annotated frames as H.264: pushed to rtp://HOST:PORT, or served at rtsp://@:PORT/PATH."""

    wants_overlay = True

    def __init__(self, uri, fps=30.0, root="/"):
        from . import gst, platform

        self.cv2 = require("cv2", "opencv", "streaming video")
        if not gst.opencv_has_gstreamer(self.cv2):
            raise UserError("--output %s needs GStreamer, but %s" % (uri, gst.NO_GSTREAMER % self.cv2.__version__))
        self.uri, self.fps, self.server = uri, fps, None
        scheme, _, rest = uri.partition("://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise UserError("--output %s: give rtp://HOST:PORT or rtsp://@:PORT/PATH" % uri)
        jetson = platform.is_jetson(root)
        nvenc = platform.has_nvenc(platform.board_model(root), platform.board_compatible(root))
        if scheme == "rtsp":
            if host not in ("@", "0.0.0.0", ""):
                raise UserError("--output %s: the runtime serves RTSP itself; write rtsp://@:%s/%s and point the "
                                "player at this machine" % (uri, port, path or "live"))
            relay = _free_udp_port()
            self.server = RtspServer(int(port), path or "live", relay)
            host, port = "127.0.0.1", relay
        self.pipeline = gst.rtp_sender(host, int(port), jetson, nvenc)
        self.writer = None

    def write(self, frame, result, annotated=None):
        annotated = self.annotate(frame, result, annotated)
        if self.writer is None:
            h, w = annotated.shape[:2]
            with native_stderr_silenced():
                self.writer = self.cv2.VideoWriter(self.pipeline, self.cv2.CAP_GSTREAMER, 0, self.fps, (w, h), True)
            if not self.writer.isOpened():
                raise UserError("cannot start the H.264 stream for %s (is x264enc there? Debian/Ubuntu: sudo apt "
                                "install gstreamer1.0-plugins-ugly); the pipeline: %s" % (self.uri, self.pipeline))
        self.writer.write(annotated)

    def close(self):
        if self.writer is not None:
            self.writer.release()
        if self.server is not None:
            self.server.close()


def _display(uri, fps):
    return DisplayOutput("runtime" if uri in ("display://0", "display://") else "runtime " + uri[len("display://"):])


def _stream(uri, fps):
    return StreamOutput(uri, fps)


def _file(uri, fps):
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    return JsonlOutput(path) if path.lower().endswith(".jsonl") else VideoOutput(path, fps)


OPENERS = {"display": _display, "rtp": _stream, "rtsp": _stream, "file": _file}  # scheme -> opener


def open_output(uri, fps=30.0) -> Output:
    """The output a URI names (the table in this module's docstring); a path with no scheme is a file."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else "file"
    if scheme not in OPENERS:
        raise UserError("--output %s: unknown kind of output (use a video file, FILE.jsonl, display://0, "
                        "rtp://HOST:PORT or rtsp://@:PORT/PATH)" % uri)
    return OPENERS[scheme](uri, fps)


def open_outputs(uris=(), jsonl=None, display=False, fps=30.0) -> list:
    """The outputs a run asked for (--output URIs, and the --jsonl and --display shorthands); if one cannot
    open, those already open are closed again."""
    opened = []
    try:
        for uri in list(uris) + ([jsonl] if jsonl else []) + (["display://0"] if display else []):
            opened.append(open_output(uri, fps))
    except BaseException:
        for out in opened:
            out.close()
        raise
    return opened
