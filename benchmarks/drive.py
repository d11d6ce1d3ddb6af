"""Closed-loop autonomy of PilotNet as `python -m train` trains it by default, with and without PilotNet's
recovery views, per precision: the README's driving table.

    .venv/bin/python benchmarks/drive.py [--seconds 120] [--out benchmarks/results]

For --road-views recovery (train's default) and centred, with everything else train's defaults (the same
seed): train pilotnet on the road, export it, make its fp16 and int8 variants (calibrated on the road),
then drive the held-out track (runtime drive's default seed) with every precision and the two reference
controllers (`runtime drive --compare`). All through the command lines, as a user would. Writes drive.json
(every row), drive.md (the table), drive.png (offset and steering over time, default model) and
drive_frame.png (one frame of the drive video). Takes about ten minutes on 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VIEWS = ("recovery", "centred")


def sh(*args):
    print("$ python -m " + " ".join(str(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m"] + [str(a) for a in args], cwd=ROOT, check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="simulated seconds per drive (120)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    work = os.path.join(args.out, "work", "drive")
    os.makedirs(work, exist_ok=True)
    rows = []
    for views in VIEWS:
        run, bundle = os.path.join(work, "runs", views), os.path.join(work, "bundles", views)
        if not os.path.isfile(os.path.join(bundle, "manifest.json")):
            sh("train", "--model", "pilotnet", "--data", "road", "--road-views", views, "--out", run)
            sh("export", "onnx", run, "--out", bundle)
            sh("export", "variants", bundle, "--calib-data", "road")
        report = os.path.join(work, "%s.json" % views)
        sh("runtime", "drive", bundle, "--seconds", args.seconds, "--compare", "--backend", "onnxruntime",
           "--json", report)
        for row in json.load(open(report))["rows"]:
            if row["controller"] == "model" or views == VIEWS[0]:  # the references once
                rows.append(dict(row, views=views if row["controller"] == "model" else "-"))
    default = os.path.join(work, "bundles", VIEWS[0])
    video = os.path.join(work, "drive.mp4")
    sh("runtime", "drive", default, "--seconds", 30, "--backend", "onnxruntime", "--output", video,
       "--plot", os.path.join(args.out, "drive.png"))
    import cv2

    capture = cv2.VideoCapture(video)
    for _ in range(450):  # read up to 15 s in, frame by frame (seeking an mp4v file can blend two frames)
        ok, frame = capture.read()
    if ok:
        cv2.imwrite(os.path.join(args.out, "drive_frame.png"), frame)
    head = ("| training views | controller | precision | autonomy | interventions | mean abs offset (m) | "
            "max abs offset (m) | steering change (1/s) | inference p50 (ms) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append("| %s | %s | %s | %.1f%% | %d | %.3f | %.3f | %.2f | %s |" % (
            r["views"], r["controller"], r["precision"], r["autonomy"], r["interventions"], r["mean_abs_offset_m"],
            r["max_abs_offset_m"], r["steering_change_per_s"],
            "%.2f" % r["latency_ms"]["p50"] if r["latency_ms"] else "-"))
    table = "\n".join(lines)
    with open(os.path.join(args.out, "drive.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "drive.json"), "w") as f:
        json.dump({"seconds": args.seconds, "rows": rows}, f, indent=2)
    print(table)
    print("wrote %s/drive.json, drive.md, drive.png, drive_frame.png" % args.out)


if __name__ == "__main__":
    main()
