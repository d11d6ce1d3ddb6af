"""One-line user errors, the base every stage shares: a UserError is a problem the user can fix, reported in
one line with exit status 2 (cli.main does that); require() and import_quietly() import optional or chatty
packages so that a missing one is such a line, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys


class UserError(Exception):
    """A problem the user can fix (bad input, missing file): reported in one line, exit status 2."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """text that any stream can print: the bytes of a file name that is not UTF-8 (which Python holds as the
    surrogates U+DC80..U+DCFF) as \\xNN, any other lone surrogate as \\uNNNN. Printing a surrogate fails on a
    strict UTF-8 stream, and OpenCV crashed on such names (runtime/images.py)."""
    def escape(match):
        code = ord(match.group())
        return "\\x%02x" % (code - 0xDC00) if 0xDC80 <= code <= 0xDCFF else "\\u%04x" % code

    return _SURROGATE.sub(escape, text)


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
