"""What the three command lines share: one-line errors with exit status 2 and an argparse that says so.

train and export import this too: runtime is the base install every stage has.
"""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A problem the user can fix (bad input, missing file): reported in one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: message (see prog --help)`, exit status 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


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


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise a UserError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError("%s needs the Python package '%s' (%s); install it with: pip install '.[%s]'"
                        % (purpose, module, exc, extra)) from None
