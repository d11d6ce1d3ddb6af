"""python -m runtime info BUNDLE: check a bundle and print what it is, its variants, its engines and manifest."""

from __future__ import annotations

import json
import sys

from .. import bundle as bundle_format
from ..backends.tensorrt import engines


def add_parser(sub):
    info = sub.add_parser("info", help="check a bundle and print its manifest")
    info.prog = "python -m runtime info"
    info.add_argument("bundle")


def main(args):
    bundle = bundle_format.load(args.bundle)
    print(bundle.describe())
    print("variants: %s" % (", ".join(bundle.variants) or "none (python -m export variants %s)" % args.bundle))
    found = sorted({p for v in ["fp32"] + bundle.variants for p in engines.listed(bundle.path, bundle.model_sha256(v))})
    print("engines: %s" % ("\n  ".join([""] + found) if found else "none yet (built on the board: python -m runtime "
                                                                    "engine %s)" % args.bundle))
    json.dump(bundle.manifest, sys.stdout, indent=2)
    print()
