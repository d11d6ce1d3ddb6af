"""Every zoo model trained on the embedded data (and on MNIST / CIFAR-10 where their files are given): held-out
accuracy (or PilotNet's MAE against a constant prediction) and training time, as a table for the README.

    .venv/bin/python benchmarks/train_zoo.py [--mnist PATH] [--cifar10 PATH] [--only NAME ...]

MNIST and CIFAR-10 are never downloaded: put MNIST's four IDX files (or mnist.npz) in a folder and CIFAR-10's
cifar-10-python.tar.gz anywhere, and pass them (README, "Training"). The binary classifier trains on a folder
of the digits 0 and 1 at 150x150, written here. Writes benchmarks/results/train_zoo.json and train_zoo.md
(with --only, the other models' rows are kept from the last run).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

RUNS = [  # name, model, data, extra arguments
    ("mnist_dense on digits", "mnist_dense", "digits", ["--epochs", "10"]),
    ("mnist_cnn on digits", "mnist_cnn", "digits", ["--epochs", "10"]),
    ("cifar_cnn on digits", "cifar_cnn", "digits", ["--epochs", "10"]),
    ("binary_cnn on digits 0 vs 1 (150x150 folder)", "binary_cnn", "folder:{zeros_ones}", ["--epochs", "5"]),
    ("pilotnet on the road (3,000 frames)", "pilotnet", "road", ["--epochs", "10"]),
    ("pilotnet on the road, --augment (flip, brightness)", "pilotnet", "road", ["--epochs", "10", "--augment"]),
    ("pilotnet on the road, --augment with shift 0.49", "pilotnet", "road",
     ["--epochs", "10", "--augment", "flip,brightness,shift", "--shift-correction", "0.49"]),
    ("mobilenetv2 on digits (random weights, 96x96)", "mobilenetv2", "digits", ["--epochs", "5"]),
]


def zeros_ones(folder):
    import cv2
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    for cls, name in ((0, "zeros"), (1, "ones")):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i, image in enumerate(digits.images[digits.target == cls]):
            big = cv2.resize((image * 255 / 16).astype(np.uint8), (150, 150), interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(os.path.join(folder, name, "%03d.png" % i), big)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", metavar="PATH", help="MNIST's IDX files or mnist.npz")
    parser.add_argument("--cifar10", metavar="PATH", help="cifar-10-python.tar.gz or its folder")
    parser.add_argument("--only", nargs="+", metavar="MODEL", help="only these zoo models")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "train_zoo.json"))
    args = parser.parse_args()
    runs = list(RUNS)
    if args.mnist:
        runs.append(("mnist_cnn on MNIST", "mnist_cnn", "mnist:" + args.mnist, ["--epochs", "5"]))
    else:
        print("MNIST: not given (--mnist PATH: a folder with its four IDX files, or mnist.npz)", file=sys.stderr)
    if args.cifar10:
        runs.append(("cifar_cnn on CIFAR-10", "cifar_cnn", "cifar10:" + args.cifar10, ["--epochs", "10"]))
    else:
        print("CIFAR-10: not given (--cifar10 PATH: cifar-10-python.tar.gz as downloaded)", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = zeros_ones(os.path.join(tmp, "zeros_ones"))
        for title, model, data, extra in runs:
            if args.only and model not in args.only:
                continue
            out = os.path.join(tmp, "run_%d" % len(results))
            started = time.time()
            proc = subprocess.run([sys.executable, "-m", "train", "--model", model, "--data",
                                   data.format(zeros_ones=folder), "--out", out] + extra, cwd=ROOT,
                                  capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
            if proc.returncode:
                print("%s failed:\n%s" % (title, proc.stderr[-2000:]), file=sys.stderr)
                continue
            with open(os.path.join(out, "history.json")) as f:
                history = json.load(f)
            held = history["held_out"]
            result = {"run": title, "date": time.strftime("%Y-%m-%d"), "epochs": history["epochs"],
                      "train_seconds": history["seconds"],
                      "wall_seconds": round(time.time() - started, 1), "held_out": held}
            results.append(result)
            shown = ("accuracy %.3f" % held["val_accuracy"] if "val_accuracy" in held else
                     "MAE %.4f (%.2fx a constant's)" % (held["val_mae"], held["mae_ratio"]))
            print("%-48s %-30s %6.1f s" % (title, shown, history["seconds"]), flush=True)
    if args.only and os.path.exists(args.json):  # the other models' rows are kept from the last full run
        with open(args.json) as f:
            kept = [r for r in json.load(f)["runs"] if r["run"] not in {x["run"] for x in results}]
        order = [title for title, _, _, _ in RUNS]
        results = sorted(kept + results, key=lambda r: order.index(r["run"]) if r["run"] in order else len(order))
    for r in results:
        r.setdefault("date", time.strftime("%Y-%m-%d"))
    report = {"cpus": os.cpu_count(), "runs": results}
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    lines = ["| run | epochs | held out | training s |", "|---|---|---|---|"]
    for r in results:
        held = r["held_out"]
        shown = ("accuracy %.3f" % held["val_accuracy"] if "val_accuracy" in held else
                 "MAE %.4f, %.2fx a constant's" % (held["val_mae"], held["mae_ratio"]))
        lines.append("| %s | %d | %s | %.0f |" % (r["run"], r["epochs"], shown, r["train_seconds"]))
    with open(os.path.splitext(args.json)[0] + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s and train_zoo.md" % args.json)


if __name__ == "__main__":
    main()
