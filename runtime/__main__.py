"""python -m runtime: run a bundle on frames (`run`), build its TensorRT engine here (`engine`), measure it
(`bench`), let a steering bundle drive the procedural road (`drive`), record driving for training (`record`),
receive the control link as a vehicle would (`vehicle`), make its key (`keygen`), check this machine (`doctor`)
or describe a bundle (`info`). Each command is a module of runtime/commands/ with its own parser; this one only
dispatches."""

from __future__ import annotations

import importlib
import sys

from .cli import ArgumentParser, main

COMMANDS = ("run", "engine", "bench", "doctor", "drive", "record", "vehicle", "keygen", "info")


def command(name):
    return importlib.import_module("runtime.commands." + name)


def build_parser():
    parser = ArgumentParser(prog="python -m runtime", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        command(name).add_parser(sub)
    return parser


def _main(argv):
    args = build_parser().parse_args(argv)
    return command(args.command).main(args)


if __name__ == "__main__":
    sys.exit(main("python -m runtime", _main))
