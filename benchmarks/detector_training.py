"""The detector's training time and held-out accuracy with train's defaults (issue 31: mAP@0.5 at least 0.8 in
at most 10 minutes on 2 cores), measured as a user runs it: `python -m train --model detector --data
road-obstacles` in a process of its own, timed from start to exit. Run by hand (about 10 minutes); it prints
one row per run and writes JSON. Extra arguments go to train (to compare --limit or --epochs):

    .venv/bin/python benchmarks/detector_training.py [--runs 1] [--out benchmarks/results/detector_training.json]
        [-- --limit 2400 --epochs 12]

Each row: wall minutes (rendering the frames, fitting, the held-out evaluation), the minutes of fitting alone, the
epochs, mAP@0.5 (pycocotools), the board matcher's, and COCO mAP@0.5:0.95 on the held-out frames.
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


def run_once(extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        command = [sys.executable, "-m", "train", "--model", "detector", "--data", "road-obstacles", "--out", out]
        started = time.monotonic()
        proc = subprocess.run(command + list(extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit("train failed (%d): %s" % (proc.returncode, proc.stderr[-2000:]))
        with open(os.path.join(out, "meta.json")) as f:
            held_out = json.load(f)["held_out"]
        with open(os.path.join(out, "history.json")) as f:
            history = json.load(f)
    return {"arguments": list(extra), "wall_minutes": round(wall / 60, 2), "epochs": history["epochs"],
            "fitting_minutes": round(history["seconds"] / 60, 2), "map50": held_out["val_map50"],
            "map50_board_matcher": held_out["val_map50_board_matcher"],
            "map": held_out["val_map"]}


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "detector_training.json"))
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    rows = []
    print("%-28s %8s %8s %6s %7s %7s %6s" % ("arguments", "minutes", "fitting", "epochs", "mAP@.5", "board", "mAP"))
    for _ in range(args.runs):
        row = run_once(extra)
        rows.append(row)
        print("%-28s %8.2f %8.2f %6d %7.3f %7.3f %6.3f" % (
            " ".join(extra) or "(defaults)", row["wall_minutes"], row["fitting_minutes"], row["epochs"], row["map50"],
            row["map50_board_matcher"], row["map"]), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"cores": os.cpu_count(), "rows": rows}, f, indent=1)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
