"""python -m runtime keygen FILE: a new key for the control link (--link-key): 64 hex digits, mode 600, never over
an existing file."""

from __future__ import annotations

from ..errors import printable
from ..vehicle.link import write_key


def add_parser(sub):
    keygen = sub.add_parser("keygen", help="make a key file for the control link (--link-key), mode 600")
    keygen.prog = "python -m runtime keygen"
    keygen.add_argument("file", help="the key file to write (never over an existing one)")


def main(args):
    print("wrote %s: give both ends of the link --link-key with a copy of it (mode 600)"
          % printable(write_key(args.file)))
    return 0
