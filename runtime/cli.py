"""What the three command lines share: an argparse whose errors are one line with exit status 2, and main(),
which turns a UserError (errors.py) and Ctrl-C into one line and an exit status.

train and export import this too: runtime is the base install every stage has.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from . import images
from .errors import UserError, printable
from .images import DEFAULT_MAX_PIXELS, ENV


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: message (see prog --help)`, exit status 2. --debug is
    taken by main() before parsing, wherever it stands; it is listed here for --help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback behind an error")

    def error(self, message):
        self.exit(2, printable("%s: error: %s (see %s --help)" % (self.prog, message, self.prog)) + "\n")


def positive_int(text):
    """argparse type: ASCII digits only (int() takes '²'-like digits of other scripts, or raises on them);
    argparse reports 'invalid positive integer value' for anything else."""
    digits = text.strip()
    value = int(digits) if digits and all(c in "0123456789" for c in digits) else 0
    if value <= 0:
        raise ValueError(text)
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def fraction(text):
    """argparse type: a limit in (0, 1] (steering and throttle are normalised: inf or 5 would clamp nothing)."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


def number_in(low, high, unit):
    """argparse type: a finite number within [low, high], for the safety settings of the vehicle link (a watchdog
    or timeout of inf silently turned a fail-safe off; a heartbeat of 1e-6 ms flooded the link)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # NaN and inf fail too
            raise argparse.ArgumentTypeError("give a number of %s from %g to %g, not %r" % (unit, low, high, text))
        return value

    parse.__name__ = unit
    return parse


def milliseconds(low, high):
    return number_in(low, high, "milliseconds")


positive_int.__name__ = "positive integer"
positive_float.__name__ = "positive number"


class _ImageBudget(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        images.set_max_pixels(values)  # now, while parsing: before anything loads OpenCV
        setattr(namespace, self.dest, values)


def add_max_image_pixels(parser):
    """--max-image-pixels N, for a command that reads images (runtime/images.py: the pixel budget)."""
    parser.add_argument("--max-image-pixels", type=positive_int, action=_ImageBudget, metavar="N",
                        help="refuse images of more than N pixels, read from their header before decoding (default "
                             "%d, Pillow's; or from %s)" % (DEFAULT_MAX_PIXELS, ENV))


def lost_for_good(prog, why, kept):
    """A live source that stopped and did not come back: one line saying so and what was kept, and exit status 3,
    which a supervisor (systemd's Restart=on-failure) restarts on."""
    print(printable("%s: error: %s; %s (exit status 3)" % (prog, why, kept)), file=sys.stderr)
    return 3


def main(prog: str, body, argv=None) -> int:
    """Run body(argv) and turn UserError and Ctrl-C into one line and an exit status (2 and 130); any other
    exception is a bug: one line that says so, exit status 1. --debug (anywhere in argv) shows the traceback.
    Every error line goes through printable() whole: exactly one line, whatever a name in it holds (a newline,
    a terminal's escape sequence, bytes that are not UTF-8). train and export use this same main()."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")  # a file name that is not UTF-8 printed as its own bytes
    try:
        images.backstop()  # the pixel budget as OpenCV's own limit, before anything loads OpenCV
        return body(argv) or 0
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(printable("%s: error: %s" % (prog, exc)), file=sys.stderr)
        if getattr(exc, "restart_cannot_fix", False) and os.environ.get("INVOCATION_ID"):
            # under systemd, whose units restart on failure: a restart cannot fix this, so exit 0 (one line in the
            # journal, not one every RestartSec for ever from a unit installed before the setting existed)
            print("%s: not restarted: fix the unit's arguments (or re-run jetson_setup.sh --service), then "
                  "systemctl restart it" % prog, file=sys.stderr)
            return 0
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted" % prog, file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; say nothing (Python's documented remedy)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug: one line for the user, the traceback with --debug (SystemExit passes)
        if debug:
            traceback.print_exc()
        print(printable("%s: internal error: %s: %s (a bug: run again with --debug and report the traceback)"
                        % (prog, type(exc).__name__, " ".join(str(exc).split())[:300])), file=sys.stderr)
        return 1
