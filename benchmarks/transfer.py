"""Transfer learning's from-scratch case, measured: mobilenetv2 from random weights on `digits` at 96x96, as
`python -m train --model mobilenetv2 --data digits` trains it, against the same run with keras.applications'
BatchNormalization momentum (0.999) left as it is. Run by hand (minutes); it prints a table and writes JSON.

    .venv/bin/python benchmarks/transfer.py [--epochs 10] [--image-size 96] [--out benchmarks/results/transfer.json]

Per variant and epoch: training accuracy (BatchNormalization in training mode, batch statistics) and held-out
accuracy as Keras evaluates it (inference mode, the moving statistics), plus the wall time. Before training,
the spread of the pooled features in inference mode (random weights, moving statistics 0 and 1) shows the
vanishing activations of an untrained MobileNetV2 there.
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def run(variant, momentum, args, dataset):
    import keras
    import numpy as np

    from train import backbones, models, run_dir, trainer

    spec = models.get("mobilenetv2").configure(image_size=args.image_size)
    spec.scratch_bn_momentum = momentum
    keras.utils.set_random_seed(0)
    base = spec.build_base()
    x_val = dataset.inputs(dataset.val, spec)
    features = np.asarray(base(x_val[:64], training=False))
    started = time.time()
    with tempfile.TemporaryDirectory() as out:
        trained = trainer.train(spec, dataset, out, args.epochs, 32, seed=0, verbose=2)
        run_dir.write(out, spec, dataset, trained)  # history.json, as python -m train writes it
        model, results = trained.model, trained.held_out
        with open(os.path.join(out, "history.json")) as f:
            history = json.load(f)
    seconds = time.time() - started
    # the trained network's held-out accuracy with BatchNormalization in training mode (batch statistics)
    pred = np.concatenate([np.asarray(model(x_val[i:i + 64], training=True)) for i in range(0, len(x_val), 64)])
    return {"variant": variant, "bn_momentum": momentum or 0.999, "epochs": args.epochs,
            "seconds": round(seconds, 1), "train_seconds": history["seconds"],
            "untrained_feature_std_inference": float(features.std()),
            "train_accuracy": history["history"]["accuracy"], "val_accuracy": history["history"]["val_accuracy"],
            "held_out": results["val_accuracy"],
            "held_out_batch_statistics": float(np.mean(pred.argmax(-1) == dataset.y_val)),
            "layers": len(backbones.backbone_of(model).layers)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--variants", nargs="+", default=["momentum_0.9", "keras_0.999"])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "transfer.json"))
    args = parser.parse_args()
    from train import datasets, load_tensorflow, models

    load_tensorflow()
    spec = models.get("mobilenetv2").configure(image_size=args.image_size)
    dataset = datasets.load("digits", spec, seed=0)
    rows = []
    for variant in args.variants:
        momentum = {"momentum_0.9": 0.9, "keras_0.999": None}[variant]
        rows.append(run(variant, momentum, args, dataset))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| BN momentum | epochs | train acc (last) | held out (inference mode) | held out (batch stats) | "
          "untrained feature std | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %g | %d | %.3f | %.3f | %.3f | %.2g | %.0f |" % (
            r["bn_momentum"], r["epochs"], r["train_accuracy"][-1], r["held_out"], r["held_out_batch_statistics"],
            r["untrained_feature_std_inference"], r["seconds"]))
    with open(args.out, "w") as f:
        json.dump({"cpu_count": os.cpu_count(), "image_size": args.image_size, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
