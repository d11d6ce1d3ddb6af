"""python -m runtime record: camera frames with the human's steering, as a DonkeyCar tub (vehicle/record.py
matches them, vehicle/tub.py writes them)."""

from __future__ import annotations

import os
import sys

from ..cli import add_max_image_pixels, lost_for_good, milliseconds, positive_float, positive_int
from ..errors import UserError
from ..outputs.base import free_bytes
from ..pipeline import run
from ..sources import DEFAULT_RECONNECT_TIMEOUT, open_source
from ..vehicle import tub
from ..vehicle.link import add_link_options, link_security
from ..vehicle.record import DEFAULT_MATCH_MS, DEFAULT_MIN_FREE_MB, MATCH_MS_RANGE, Readings, TubOutput


def add_parser(sub):
    p = sub.add_parser("record", help="record camera frames with the human's steering as a DonkeyCar tub, for "
                                      "python -m train --data drivelog:DIR")
    p.prog = "python -m runtime record"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--source", "--input", dest="source", required=True,
                   help="a camera URI, as runtime run takes (csi://0, /dev/video0, rtsp://..., synthetic://road)")
    p.add_argument("--steering-from", required=True, metavar="SPEC",
                   help="udp://:PORT, serial:///dev/ttyX?baud=N or joystick:///dev/input/eventN")
    p.add_argument("--out", required=True, metavar="DIR", help="the tub (a new folder, or a tub to add to)")
    add_link_options(p, receiving=True)
    p.add_argument("--match-ms", type=milliseconds(*MATCH_MS_RANGE), default=DEFAULT_MATCH_MS,
                   help="store a frame with the reading nearest in time within this (default %g; %g to %g)"
                        % ((DEFAULT_MATCH_MS,) + MATCH_MS_RANGE))
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames stored")
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after S seconds")
    p.add_argument("--min-free-mb", type=positive_float, default=DEFAULT_MIN_FREE_MB,
                   help="stop when the disk has less than this left (default %g)" % DEFAULT_MIN_FREE_MB)
    p.add_argument("--quality", type=positive_int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--input-width", type=positive_int, metavar="W")
    p.add_argument("--input-height", type=positive_int, metavar="H")
    p.add_argument("--input-rate", type=positive_float, metavar="FPS", help="frame rate of synthetic://road")
    add_max_image_pixels(p)  # a folder or glob of images as the source
    p.add_argument("--reconnect-timeout", type=positive_float, default=DEFAULT_RECONNECT_TIMEOUT, metavar="S")


def _open(args):
    """What a recording reads from and writes to, each checked: (readings, source, tub output)."""
    if not 1 <= args.quality <= 100:
        raise UserError("--quality must be 1 to 100")
    if (args.input_width is None) != (args.input_height is None):
        raise UserError("give --input-width and --input-height together")
    folder = os.path.abspath(args.out)
    tub.check(folder)
    if free_bytes(os.path.dirname(folder)) < args.min_free_mb * (1 << 20):
        raise UserError("the disk holding %s has less than %g MB left (--min-free-mb)" % (args.out, args.min_free_mb))
    security = link_security(args)
    readings, source = Readings(args.steering_from, security), None
    try:
        source = open_source(args.source, args.input_width, args.input_height, args.input_rate,
                             reconnect_timeout=args.reconnect_timeout, link=security)
        recording = TubOutput(folder, readings, args.match_ms / 1000.0, args.quality, args.max_frames,
                              args.min_free_mb, shown=args.out)
    except BaseException:
        readings.close()
        if source is not None:
            source.close()
        raise
    return readings, source, recording


def main(args):
    readings, source, recording = _open(args)
    writer = recording.writer
    if writer.resumed_at:
        print("record: adding to the tub in %s after its %d records" % (args.out, writer.resumed_at), file=sys.stderr)
    print("record: %s with steering from %s into %s (Ctrl-C stops)" % (source.uri, args.steering_from, args.out),
          file=sys.stderr, flush=True)
    stats, stopped = None, None
    try:
        with source:  # the same loop as runtime run's, without a network: frames -> the tub
            stats = run(None, source, [recording], log=None, seconds=args.seconds)
        stopped = stats.stopped
    except OSError as exc:  # the disk filled between the check and a write: the tub is whole, as tub.py leaves it
        stopped = "cannot write %s: %s: stopped, every flushed record is complete" % (args.out, exc.strerror or exc)
    finally:
        readings.close()
        try:
            recording.close()  # closed already, unless an error is on its way: then what it holds goes to the disk
        except OSError:
            pass
    return _ended(args, recording, readings, source, stats, stopped)


def _ended(args, recording, readings, source, stats, stopped):
    """The summary line, then the exit status (or the one-line error) that says how the recording ended."""
    writer, dropped = recording.writer, stats.dropped if stats is not None else 0
    print("recorded %d frames into %s (%d records in all); %d frame(s) had no reading within %g ms; %d reading(s)%s%s%s"
          % (writer.written, args.out, writer.index, recording.recorder.unmatched, args.match_ms, readings.count,
             ", %d malformed" % readings.malformed if readings.malformed else "",
             ", %d refused (unsigned, forged or replayed)" % readings.refused if readings.refused else "",
             ", %d stale frame(s) dropped" % dropped if dropped else ""))
    if stopped:
        raise UserError(stopped)
    if stats is not None and stats.interrupted:
        return 128 + int(stats.signal or 2)
    if source.lost:
        return lost_for_good("python -m runtime record", source.lost, "every record is complete")
    if readings.count == 0:
        raise UserError("no steering reading came from %s: is the sender pointed at this machine?" % args.steering_from)
    return 0
