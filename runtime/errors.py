"""One-line user errors, the base every stage shares: a UserError is a problem the user can fix, reported in
one line with exit status 2 (cli.main does that); require() and import_quietly() import optional or chatty
packages so that a missing one is such a line, not a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys


class UserError(Exception):
    """A problem the user can fix (bad input, missing file): reported in one line, exit status 2."""


# What printable() escapes: C0 controls (newlines and terminal escapes among them), DEL, C1 controls, the line and
# paragraph separators (str.splitlines() splits at them), the bidirectional overrides and isolates (which reorder
# what a terminal shows), and surrogates (a name's bytes that are not UTF-8, or a lone one).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match):
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x80:  # C0 and DEL
        return "\\x%02x" % code
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as Python holds it: the byte
        return "\\x%02x" % (code - 0xDC00)
    return "\\u%04x" % code  # C1 (as \u0085: \x85 would read as the byte), separators, overrides, surrogates


def printable(text: str) -> str:
    """text as one line that any stream can print and no terminal acts on: newlines, tabs and carriage returns as
    \\n, \\t, \\r; other C0 controls (the escape that starts a terminal's colour codes) and DEL as \\xNN; the bytes
    of a file name that is not UTF-8 (which Python holds as the surrogates U+DC80..U+DCFF) as \\xNN too; C1
    controls, the line and paragraph separators, bidirectional overrides and any other lone surrogate as \\uNNNN.
    Printing a surrogate fails on a strict UTF-8 stream, and OpenCV crashed on such names (runtime/images.py)."""
    return _UNPRINTABLE.sub(_escape, str(text))


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise a UserError naming the extra that installs it."""
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
    with native_stderr_silenced():
        mod = importlib.import_module(module)
        if then is not None:
            then(mod)
        return mod
