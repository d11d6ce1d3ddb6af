"""python -m runtime run BUNDLE --source URI [--output URI ...]: a bundle on a source, with overlay, video, JSON
lines, the browser view and the vehicle's control link; `info` describes a bundle (info.py)."""

from __future__ import annotations

import argparse
import signal
import sys

from .. import bundle as bundle_format
from ..backends import NAMES as BACKENDS
from ..backends.tensorrt.engines import PRECISIONS
from ..cli import add_max_image_pixels, fraction, lost_for_good, milliseconds, number_in, positive_float, positive_int
from ..errors import UserError, printable
from ..gst_launch import CODECS
from ..model import Model
from ..networks import Networks, dla_placement
from ..outputs import add_rotation_options, has_screen, open_outputs
from ..outputs.files import MaskFiles
from ..outputs.web import host_problem, token_problem
from ..pipeline import run
from ..postprocess import check_threshold
from ..preprocess import GPU_MODES, GST_MODES
from ..sim.braking import CAMERA_HEIGHT_RANGE, CAMERA_PITCH_RANGE, DECEL_LIMIT_MPS2, Camera, DeadReckoned
from ..sources import DEFAULT_RECONNECT_TIMEOUT, FLIPS, open_source
from ..uri import without_credentials
from ..vehicle import ros2
from ..vehicle import sender as control_output
from ..vehicle.link import add_link_options, link_security
from ..vehicle.sender import ControlSettings


def web_host(text):
    """argparse type for --web-host: a name a browser puts in the address (runtime/outputs/web.py)."""
    if host_problem(text):
        raise argparse.ArgumentTypeError(host_problem(text))
    return text


def web_token(text):
    """argparse type for --web-token: what goes into a URL unescaped (runtime/outputs/web.py), else one line."""
    if token_problem(text):
        raise argparse.ArgumentTypeError(token_problem(text))
    return text


def brake_value(text):
    """argparse type for --brake: 0.01 to 1 (NaN and inf refused in one line)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not control_output.MIN_BRAKE <= value <= 1.0:
        raise argparse.ArgumentTypeError("give a brake of %g to 1 (the brake sent at the deceleration limit), not "
                                         "%r" % (control_output.MIN_BRAKE, text))
    return value


def add_parser(sub):
    run = sub.add_parser("run", help="run a bundle on a source, with overlay, video and JSON lines",
                         epilog="exit status: 0 when the source ends or --max-frames is reached; 2 for a bad "
                                "command, bundle or source; 3 when a live source stopped and did not come back "
                                "within --reconnect-timeout (a supervisor may restart the run); 130 after Ctrl-C "
                                "and 143 after SIGTERM, every output closed complete")
    run.prog = "python -m runtime run"
    run.add_argument("bundle", nargs="+", help="bundle directory (made by python -m export onnx); several run on the "
                                               "same frames, steering first (docs/runtime.md)")
    run.add_argument("--source", "--input", dest="source", required=True,
                     help="csi://N, v4l2:///dev/videoN (or /dev/videoN, N), rtsp://..., gst://PIPELINE, "
                          "synthetic://road, file://PATH, a video, an image, a folder or a glob of images")
    run.add_argument("--output", action="append", default=[],
                     metavar="FILE.mp4|FILE.jsonl|display://0|rtp://HOST:PORT|rtsp://@:PORT/PATH|http://HOST:PORT|"
                             "udp://HOST:PORT|serial:///dev/ttyX?baud=N|ros2://TOPIC",
                     help="annotated frames to a video file, JSON lines to a file, a window, an RTP/H.264 stream, "
                          "an RTSP server here, a web page with the live view and statistics, or commands to a "
                          "vehicle (udp://, serial://, ros2://: see the control options); may be repeated")
    run.add_argument("--jsonl", metavar="FILE", help="write one JSON line per frame")
    add_rotation_options(run)
    run.add_argument("--masks", metavar="DIR", help="segmentation bundles: each frame's class map as DIR/NNNNNNNN.png "
                                                    "(8-bit class indices at the network's size)")
    run.add_argument("--masks-every", type=positive_int, default=1, metavar="N",
                     help="with --masks: every N-th frame only (default 1)")
    run.add_argument("--priority", type=lambda v: [n for n in v.split(",") if n], metavar="NAME[,NAME...]",
                     help="several bundles: the networks from the highest priority down (NAME: its key in the JSON "
                          "line); the first runs on every frame, the others when they are free, each below the one "
                          "before (default: a steering bundle first, then the order given)")
    run.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    show = run.add_mutually_exclusive_group()
    show.add_argument("--display", dest="display", action="store_true", default=None,
                      help="show a window (default: only where a screen exists)")
    show.add_argument("--no-display", "--headless", dest="display", action="store_false",
                      help="never show a window")
    _detection_options(run)
    _backend_options(run)
    _input_options(run)
    _service_options(run)
    _control_options(run)


def score(text):
    """argparse type for --threshold: a score from 0 to 1 (postprocess.check_threshold's rule)."""
    try:
        return check_threshold(float(text))
    except (ValueError, UserError):  # not a number, NaN, or out of range
        raise argparse.ArgumentTypeError("give a score from 0 to 1, not %r" % text) from None


def _detection_options(run):
    """A detection bundle's threshold, classes and tracking (runtime/postprocess.py, runtime/tracker.py)."""
    det = run.add_argument_group("detection (detection bundles only)")
    det.add_argument("--threshold", type=score, metavar="T",
                     help="keep detections scoring at least T, 0 to 1 (default: the bundle's threshold)")
    det.add_argument("--classes", metavar="NAME[,NAME...]",
                     help="keep only these classes, by name or index (default: all; `runtime info` lists them)")
    det.add_argument("--track", action="store_true",
                     help="give each object an id it keeps across frames (an IoU tracker, as detectNet's)")


def _backend_options(run):
    """Which backend, precision and engine."""
    run.add_argument("--backend", choices=BACKENDS, default="auto",
                     help="inference backend (default auto: TensorRT where it and a GPU are, else ONNX Runtime)")
    run.add_argument("--precision", choices=PRECISIONS,
                     help="TensorRT: which engine (default fp16 where the GPU has fast FP16); ONNX Runtime: "
                          "model.onnx (fp32, the default) or the bundle's fp16/int8 variant")
    run.add_argument("--dla-core", action="append", metavar="[NAME=]N",
                     help="TensorRT: run on DLA core N, the layers the DLA cannot run on the GPU; with several "
                          "bundles NAME=N for each network to put on a DLA (NAME: its key in the JSON line), one "
                          "network per core")
    run.add_argument("--no-build", dest="build", action="store_false",
                     help="TensorRT: never build an engine here; fail when the bundle has none for this device")


def _input_options(run):
    """How the source is read."""
    run.add_argument("--input-width", type=positive_int, metavar="W", help="frame width from the source")
    run.add_argument("--input-height", type=positive_int, metavar="H", help="frame height from the source")
    run.add_argument("--input-rate", type=positive_float, metavar="FPS",
                     help="frame rate of synthetic://road (default: as fast as it is read)")
    run.add_argument("--input-loop", "--loop", dest="loop", action="store_true",
                     help="loop a video, image or folder")
    run.add_argument("--input-flip", default="none", choices=FLIPS,
                     help="rotate or mirror frames (in the VIC for csi:// on a Jetson)")
    run.add_argument("--input-codec", choices=CODECS, help="rtsp:// stream codec (default h264)")
    run.add_argument("--reconnect-timeout", type=positive_float, default=DEFAULT_RECONNECT_TIMEOUT, metavar="S",
                     help="how long a live source that failed or stalled may take to come back (default %g s); "
                          "then the run ends with exit status 3" % DEFAULT_RECONNECT_TIMEOUT)
    run.add_argument("--gst-preprocess", choices=GST_MODES, default="auto",
                     help="a GStreamer camera or stream (csi://; v4l2:// and rtsp:// with --input-width and "
                          "--input-height) crops to the bundle's crop in its pipeline when no output needs the "
                          "whole frame (JSON lines and control outputs only): auto and crop (exact), on (crops and "
                          "scales too, in the VIC or videoscale: a skew, docs/performance.md), off")
    run.add_argument("--gpu-preprocess", choices=GPU_MODES, default="auto",
                     help="TensorRT: an engine that takes the whole uint8 frame at --input-width x --input-height "
                          "and crops, resizes (area contracts) and converts colour on the GPU: auto (where it can; "
                          "not when --gst-preprocess crop or on crops in the camera's pipeline), on, off")
    run.add_argument("--read-timeout", type=positive_float, metavar="S",
                     help="a live source that gives no frame for S seconds has stalled and is reconnected "
                          "(default: 10 frame intervals at its rate, at least 1 s)")


def _service_options(run):
    """The browser view's token, pacing, status and the image budget."""
    run.add_argument("--web-token", metavar="TOKEN", type=web_token,
                     help="the token an http:// output asks for: letters, digits, - . _ ~ (default: none on "
                          "127.0.0.1; a random one, printed, when bound to another address)")
    run.add_argument("--web-host", metavar="NAME", type=web_host, action="append", default=[],
                     help="a name (besides the bound address) that an http:// output answers to, as in the "
                          "browser's address; refused otherwise, against DNS rebinding (repeatable)")
    run.add_argument("--realtime", action="store_true",
                     help="pace a video or folder at its frame rate, newest frame wins, as a camera would")
    run.add_argument("--quiet", action="store_true", help="no live status, only the summary")
    add_max_image_pixels(run)


def _control_options(run):
    """The control link's options (udp://, serial:// and ros2:// outputs)."""
    ctl = run.add_argument_group("control (udp://, serial:// and ros2:// outputs: commands to a vehicle)")
    ctl.add_argument("--watchdog-ms", type=milliseconds(*control_output.WATCHDOG_MS_RANGE), metavar="MS",
                     help="send neutral when no fresh result came for MS (default: 3 measured frame periods, at "
                          "least %g ms; %g ms for a source that is not live)"
                          % (1000 * control_output.MIN_WATCHDOG_S, 1000 * control_output.UNPACED_WATCHDOG_S))
    ctl.add_argument("--heartbeat-ms", type=milliseconds(*control_output.HEARTBEAT_MS_RANGE), metavar="MS",
                     help="a heartbeat line every MS (default %g), for the vehicle's own fail-safe"
                          % (1000 * control_output.DEFAULT_HEARTBEAT_S))
    ctl.add_argument("--steering-limit", type=fraction, default=1.0, metavar="S",
                     help="clamp the steering sent to [-S, S], S up to 1 (default 1: the bundle's whole range)")
    ctl.add_argument("--steering-rate", type=number_in(0.01, 1000.0, "steering units a second"), metavar="S_PER_S",
                     help="change the steering sent by at most this much a second (default: no limit)")
    ctl.add_argument("--throttle", type=float, metavar="T",
                     help="send this throttle with each steering command (-1..1; default: none sent)")
    ctl.add_argument("--ros2-msg", choices=("ackermann", "twist"), default="ackermann",
                     help="ros2://TOPIC: ackermann_msgs/AckermannDriveStamped (default) or geometry_msgs/Twist")
    ctl.add_argument("--wheelbase", type=number_in(*ros2.WHEELBASE_RANGE, "metres"), metavar="M",
                     help="ros2:// with ackermann: front to rear axle, for the steering angle")
    ctl.add_argument("--speed", type=number_in(*ros2.SPEED_RANGE, "metres a second"), metavar="M_PER_S",
                     help="ros2://: the speed the drive messages carry (-50 to 50); with --brake, the speed the "
                          "car drives at when not braking (more than 0): while braking, the policy dead-reckons "
                          "the car's speed from the decelerations it asked (the link has no speedometer)")
    _brake_options(ctl)
    add_link_options(ctl, receiving=True)  # receiving: synthetic://road?control= checks what the output signs


def _brake_options(ctl):
    """--brake and the camera its policy measures with (runtime/sim/braking.py; docs/vehicle.md)."""
    ctl.add_argument("--brake", type=brake_value, metavar="B",
                     help="brake for what a detection bundle sees in the steered path (several bundles, a steering "
                          "bundle first, then a detector): while an obstacle is there each command carries throttle "
                          "0 and brake = B x the deceleration the braking policy asks / its limit (%g m/s^2), else "
                          "brake 0 (ros2://: speed 0 while braking, ackermann's acceleration the deceleration "
                          "asked). B: 0.01 to 1; needs --speed and a udp://, serial:// or ros2:// "
                          "output" % DECEL_LIMIT_MPS2)
    ctl.add_argument("--camera-height", type=number_in(*CAMERA_HEIGHT_RANGE, "metres"), metavar="M",
                     help="with --brake: the camera's height over the road for the boxes' distances (default: the "
                          "detector manifest's camera.height_m, else the simulator's 1.4)")
    ctl.add_argument("--camera-pitch", type=number_in(*CAMERA_PITCH_RANGE, "degrees"), metavar="DEG",
                     help="with --brake: the camera's pitch, down positive (default: the manifest's "
                          "camera.pitch_deg, else the simulator's 0)")


def braking_camera(args):
    """--brake's inputs checked, each refusal one line: the Camera its policy measures with (the first detection
    bundle's), or None without --brake. The bundles' manifests are read here, before any network loads."""
    if args.brake is None:
        for name in ("camera_height", "camera_pitch"):
            if getattr(args, name) is not None:
                raise UserError("--%s goes with --brake" % name.replace("_", "-"))
        return None
    if args.speed is None or not args.speed > 0.0:
        raise UserError("--brake needs --speed M/S, more than 0: the car's speed when it is not braking (the "
                        "link has no speedometer)")
    schemes = [o.partition("://")[0].lower() for o in args.output if "://" in o]
    if not any(s in ("udp", "serial", "ros2") for s in schemes):  # ros2:// brakes too: speed 0 (ros2.py)
        raise UserError("--brake sends its brake on the control link: give --output udp://HOST:PORT, "
                        "serial:///dev/ttyX?baud=N or ros2://TOPIC")
    bundles = [bundle_format.load(path) for path in args.bundle]
    detectors = [b for b in bundles if b.task == "detection"]
    if not detectors or not any(b.task == "steering" for b in bundles):
        raise UserError("--brake brakes for what a detection bundle sees in the steered path: give a steering "
                        "bundle and a detection bundle (e.g. bundles/pilotnet bundles/detector)")
    return Camera.of_bundle(detectors[0], args.camera_height, args.camera_pitch)


def braking_policy(camera, fps, cruise):
    """The policy --brake hands the control link: the simulator's, at the car's speed dead-reckoned from the
    decelerations it asked (braking.DeadReckoned: the link has no speedometer), counting time in frames at the
    source's rate where it is known (else 30)."""
    fps = fps if fps and 1.0 <= fps <= 1000.0 else 30.0  # 0 (not known yet), NaN and absurd rates: 30
    return DeadReckoned(camera, fps, cruise)


FRAME_FREE = ("udp", "serial", "ros2")  # outputs that take results only (with JSON-lines files)


def gpu_preprocess(args):
    """--gpu-preprocess as the Model takes it: the GPU layers take the frame whole, so a pipeline asked to crop
    (--gst-preprocess crop or on) leaves auto off and refuses on in one line."""
    if args.gst_preprocess in ("crop", "on") and args.gpu_preprocess != "off":
        if args.gpu_preprocess == "on":
            raise UserError("--gpu-preprocess on takes the whole frame: it does not go with --gst-preprocess %s "
                            "(which crops in the camera's pipeline)" % args.gst_preprocess)
        return "off"
    return args.gpu_preprocess


def gst_request(args, model, display):
    """What the source's pipeline is asked to do (--gst-preprocess), or None: nothing where an output needs the
    whole frame (a window, a video, a stream, the browser view), or where the engine takes it (--gpu-preprocess);
    --gst-preprocess crop or on there is refused."""
    if model.frame_size is not None:
        return None
    if model.bundle.task == "detection":  # boxes are given in the whole frame's pixels: it must arrive whole
        if args.gst_preprocess in ("crop", "on"):
            raise UserError("--gst-preprocess %s: a detection bundle's boxes are in the whole frame's pixels, "
                            "so the camera's pipeline does not crop for it (--gst-preprocess auto or off)"
                            % args.gst_preprocess)
        return None
    whole = [o for o in args.output if not (o.partition("://")[0].lower() in FRAME_FREE or
                                            ("://" not in o and o.lower().endswith(".jsonl")))]
    whole += ["the window (--display)"] if display else []
    if not whole:
        return model.preprocess.request(args.gst_preprocess)
    if args.gst_preprocess in ("crop", "on"):
        raise UserError("--gst-preprocess %s: %s needs the whole frame (give --no-display, and JSON lines or "
                        "control outputs only)" % (args.gst_preprocess, printable(whole[0])))
    return None


def check_prepared(args, source):
    """The source's pipeline did what --gst-preprocess crop or on asked, or a one-line error."""
    if args.gst_preprocess in ("crop", "on") and source.prepared is None:
        raise UserError("--gst-preprocess %s: only csi://, and v4l2:// or rtsp:// read through GStreamer with "
                        "--input-width and --input-height, with no --input-flip, crop in their pipeline"
                        % args.gst_preprocess)


def _prepared_note(source, model):
    if model.frame_size is not None:
        return "; crop, resize and colour in the TensorRT engine, on %dx%d frames" % model.frame_size
    if model.gpu_note and model.backend.name == "tensorrt":
        return "; %s" % model.gpu_note
    return "; the %s is done in the source's GStreamer pipeline" % (
        "crop" if source.prepared == "crop" else "crop and resize") if source.prepared else ""


def _several(args):
    """Networks for several bundles, their options checked: each network takes the frame whole."""
    if args.gst_preprocess in ("crop", "on") or args.gpu_preprocess == "on":
        raise UserError("several networks each take the frame whole: --gst-preprocess %s and --gpu-preprocess %s "
                        "are for one bundle" % (args.gst_preprocess, args.gpu_preprocess))
    return Networks(args.bundle, dla_cores=args.dla_core, priority=args.priority, backend=args.backend,
                    precision=args.precision, build=args.build, threshold=args.threshold, classes=args.classes,
                    track=args.track)


def _one(args, size):
    """The Model for one bundle: its DLA core (--dla-core N, or NAME=N with its name) checked against the board."""
    if args.priority:
        raise UserError("--priority orders several networks; one bundle is given")
    bundle = bundle_format.load(args.bundle[0])
    return Model(bundle, backend=args.backend, precision=args.precision,
                 dla_core=dla_placement(args.dla_core, [bundle.name]).get(bundle.name), build=args.build,
                 gpu_preprocess=gpu_preprocess(args), frame_size=size, threshold=args.threshold,
                 classes=args.classes, track=args.track)


def main(args):
    if (args.input_width is None) != (args.input_height is None):
        raise UserError("give --input-width and --input-height together")
    display = has_screen() if args.display is None else args.display
    security = link_security(args)
    camera = braking_camera(args)
    control = ControlSettings(args.watchdog_ms, args.heartbeat_ms, args.steering_limit, args.steering_rate,
                              args.throttle, args.ros2_msg, args.wheelbase, args.speed, security, brake=args.brake,
                              policy=braking_policy(camera, None, args.speed) if camera is not None else None)
    size = (args.input_width, args.input_height) if args.input_width else None
    several = len(args.bundle) > 1
    with (_several(args) if several else _one(args, size)) as model:
        bundles = model.bundles if several else [model.bundle]
        if args.masks:
            MaskFiles.check(bundles)  # before the source opens
        model.backend.prepare(shared_cores=True)  # the model loads now (run's capture thread shares the cores)
        source = open_source(args.source, args.input_width, args.input_height, args.input_rate, args.loop,
                             args.input_flip, args.input_codec, args.reconnect_timeout,
                             read_timeout=args.read_timeout, link=security,
                             prepare=None if several else gst_request(args, model, display))
        with source:
            check_prepared(args, source)
            if not several:
                model.preprocess.prepared = source.prepared
            masks = [MaskFiles(args.masks, args.masks_every)] if args.masks else []  # opens nothing yet
            if camera is not None:  # the source's rate is known now
                control.policy = braking_policy(camera, source.fps, args.speed)
            outputs = open_outputs(args.output, args.jsonl, display, fps=source.fps, web_token=args.web_token,
                                   control=control, jsonl_max_mb=args.jsonl_max_mb, jsonl_keep=args.jsonl_keep,
                                   web_hosts=args.web_host) + masks
            backends = model.backends() if several else [(None, model.backend)]
            print("runtime: %s on %s with %s" % (
                "; ".join(printable(b.describe()) for b in bundles), printable(without_credentials(source.uri)),
                "; ".join("%s%s (%s; %s)" % (name + " on " if name else "", b.name, b.detail, b.reason)
                          for name, b in backends) + ("" if several else _prepared_note(source, model))),
                  file=sys.stderr)
            stats = run(model, source, outputs, args.max_frames, log=None if args.quiet else sys.stderr,
                        realtime=args.realtime)
    stopped_by = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}.get(stats.signal, "a signal")
    print(stats.summary() + (" (stopped by %s)" % stopped_by if stats.interrupted else ""))
    if several:
        for name, (rate, dropped) in model.rates(stats.end - stats.start).items():
            print("  %s: %.1f results a second, %d frame(s) passed over while it was busy" % (name, rate, dropped))
    for path in args.output + ([args.jsonl] if args.jsonl else []) + ([args.masks + "/"] if args.masks else []):
        print("wrote %s" % path)
    if stats.interrupted:
        return 128 + int(stats.signal or signal.SIGINT)  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    if stats.stopped:
        raise UserError(stats.stopped)
    if source.lost:
        return lost_for_good("python -m runtime", source.lost, "every output is complete")
    if stats.frames == 0:
        raise UserError("the source %s gave no frames" % args.source)
