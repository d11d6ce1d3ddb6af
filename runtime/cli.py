"""What the three command lines share: one-line errors with exit status 2 and an argparse that says so.

train and export import this too: runtime is the base install every stage has.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys


class UserError(Exception):
    """A problem the user can fix (bad input, missing file): reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: message (see prog --help)`, exit status 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def positive_int(text):
    """argparse type: argparse reports 'invalid positive integer value' for anything else."""
    value = int(text) if text.strip().isdigit() else 0
    if value <= 0:
        raise ValueError(text)
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"
positive_float.__name__ = "positive number"


def main(prog: str, body, argv=None) -> int:
    """Run body(argv) and turn UserError and Ctrl-C into one line and an exit status."""
    try:
        return body(argv) or 0
    except UserError as exc:
        print("%s: error: %s" % (prog, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted" % prog, file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; say nothing (Python's documented remedy)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise a UserError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError("%s needs the Python package '%s' (%s); install it with: pip install '.[%s]'"
                        % (purpose, module, exc, extra)) from None


@contextlib.contextmanager
def native_stderr_silenced():
    """Silence file descriptor 2 for native libraries that log there whatever they are told (TensorFlow's
    C++ start-up, FFmpeg probing a file), so that our one-line messages stay one line."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_quietly(module: str, then=None):
    """Import a chatty native package silenced; `then(mod)` runs silenced too (TensorFlow prints more when
    it first looks for devices). Import errors still surface, after stderr is back."""
    import importlib

    with native_stderr_silenced():
        mod = importlib.import_module(module)
        if then is not None:
            then(mod)
        return mod
