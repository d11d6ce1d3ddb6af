"""python -m train: train a zoo model on a dataset, or print a model's summary.

    python -m train --model pilotnet --data road --epochs 10 --out runs/pilotnet
    python -m train --model cifar_cnn --summary
"""

from __future__ import annotations

import os
import sys

from runtime.cli import ArgumentParser, UserError, main, positive_int

from . import datasets, models


def build_parser():
    parser = ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="one of: " + ", ".join("%s (%s)" % (n, s.about) for n, s in models.ZOO.items()))
    parser.add_argument("--data", metavar="DATASET",
                        help="one of: %s (default: digits for classifiers, road for pilotnet)"
                             % ", ".join(datasets.NAMES))
    parser.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="default 10")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="default 32")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="at most N training examples (road: generate N frames; default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="for the split, the road and the weights")
    parser.add_argument("--out", metavar="RUN_DIR", help="where the model, history, plot and metadata go")
    parser.add_argument("--summary", action="store_true", help="print the Keras summary and exit")
    return parser


def _main(argv):
    args = build_parser().parse_args(argv)
    spec = models.get(args.model)
    if args.summary:
        from . import load_tensorflow

        load_tensorflow()
        spec.build().summary()
        return 0
    if not args.out:
        raise UserError("--out RUN_DIR is required to train (or give --summary)")
    data = args.data or spec.default_data
    if data is None:
        raise UserError("%s needs a two-class image folder: --data folder:PATH (one subfolder per class)"
                        % spec.name)
    datasets.check(data, spec)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError("--out %s exists and is not a folder" % args.out)
    from . import load_tensorflow, trainer

    load_tensorflow()

    print("loading %s for %s" % (data, spec.name), file=sys.stderr)
    dataset = datasets.load(data, spec, limit=args.limit, seed=args.seed)
    trainer.train(spec, dataset, args.out, args.epochs, args.batch_size, seed=args.seed)
    print("wrote %s (model.keras, history.json, training.png, summary.txt, meta.json, samples/)" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main("python -m train", _main))
