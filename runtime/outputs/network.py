"""rtp://HOST:PORT and rtsp://@:PORT/PATH: annotated frames as H.264, pushed over RTP/UDP or served by an
RTSP server here (gst-rtsp-server), as jetson-inference serves them. The Jetson's hardware encoder where the
board has one (Orin Nano has none), else x264enc."""

from __future__ import annotations

import socket
import threading

from .. import gst_launch, platform
from ..errors import UserError, native_stderr_silenced, require
from ..uri import port_number
from .base import Output


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """gst-rtsp-server in a thread of its own, relaying a local RTP stream at rtsp://@:port/path."""

    def __init__(self, port, path, relay_port):
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
        factory.set_launch(gst_launch.rtsp_relay(relay_port))
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
        scheme, _, rest = uri.partition("://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        if port_number(port) is None or not host:
            raise UserError("--output %s: give rtp://HOST:PORT or rtsp://@:PORT/PATH (PORT 1 to 65535)" % uri)
        port = str(port_number(port))
        self.cv2 = require("cv2", "opencv", "streaming video")
        if not gst_launch.opencv_has_gstreamer(self.cv2):
            raise UserError("--output %s needs GStreamer, but %s"
                            % (uri, gst_launch.NO_GSTREAMER % self.cv2.__version__))
        self.uri, self.fps, self.server = uri, fps, None
        jetson = platform.is_jetson(root)
        nvenc = platform.has_nvenc(platform.board_model(root), platform.board_compatible(root))
        if scheme == "rtsp":
            if host not in ("@", "0.0.0.0", ""):
                raise UserError("--output %s: the runtime serves RTSP itself; write rtsp://@:%s/%s and point the "
                                "player at this machine" % (uri, port, path or "live"))
            relay = _free_udp_port()
            self.server = RtspServer(int(port), path or "live", relay)
            host, port = "127.0.0.1", relay
        self.pipeline = gst_launch.rtp_sender(host, int(port), jetson, nvenc)
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


def open_stream(uri, fps=30.0, **_):
    return StreamOutput(uri, fps)
