"""PilotNet's loop at a size that means something: record --seconds of driving the procedural road (the simulated
car's steering sensor over UDP), train pilotnet on the tub, export it, then drive the held-out track through
the control link (synthetic://road?control=udp://, 30 FPS real time) and, for reference, with `runtime drive`
(the same network in the simulator's own loop). Two networks are trained on the recording: as it is, and with
--augment flip,brightness,shift (shifted views teach recovery from drift, which a recording of careful driving
lacks); the checked-in PilotNet (trained on rendered recovery views) is driven through the link too. Reports
autonomy and the control latency (capture -> command sent, p50/p95).

    .venv/bin/python benchmarks/vehicle_loop.py [--seconds 60] [--epochs 10] [--drive-seconds 60]

Writes benchmarks/results/vehicle_loop.json.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cli(*args):
    proc = subprocess.run([sys.executable, "-m"] + [str(a) for a in args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
    if proc.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(map(str, args)), proc.stderr[-3000:]))
    return proc


def port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def through_the_link(bundle, seconds, work):
    p, report = port(), os.path.join(work, "link-%s.json" % os.path.basename(bundle))
    proc = cli("runtime", "run", bundle, "--source", "synthetic://road?control=udp://127.0.0.1:%d&report=%s"
               % (p, report), "--output", "udp://127.0.0.1:%d" % p, "--input-width", "200", "--input-height", "110",
               "--max-frames", int(seconds * 30), "--no-display", "--quiet", "--backend", "onnxruntime")
    drive = json.load(open(report))
    latency = re.search(r"capture -> sent p50 ([\d.]+) ms p95 ([\d.]+) ms", proc.stderr)
    drive["control_latency_ms"] = {"p50": float(latency.group(1)), "p95": float(latency.group(2))}
    return drive


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of driving recorded (default 60)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--drive-seconds", type=float, default=60.0)
    parser.add_argument("--json", default=os.path.join(HERE, "results", "vehicle_loop.json"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="vehicle-loop-")
    report = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "recorded_seconds": args.seconds,
              "epochs": args.epochs, "drive_seconds": args.drive_seconds}
    p = port()
    t = time.perf_counter()
    proc = cli("runtime", "record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d" % p,
               "--steering-from", "udp://127.0.0.1:%d" % p, "--out", os.path.join(work, "tub"),
               "--seconds", args.seconds, "--input-width", "320", "--input-height", "180")
    report["record"] = proc.stdout.strip().splitlines()[-1]
    print(report["record"], "(%.0f s)" % (time.perf_counter() - t), flush=True)
    networks = []
    for name, extra in (("recorded drive", []),
                        ("recorded drive, --augment with shift", ["--augment", "flip,brightness,shift",
                                                                   "--shift-correction", "0.49"])):
        run, t = os.path.join(work, "run-%d" % len(networks)), time.perf_counter()
        cli("train", "--model", "pilotnet", "--data", "drivelog:%s" % os.path.join(work, "tub"), "--epochs",
            args.epochs, "--steering-radius", "10", "--out", run, *extra)
        seconds = round(time.perf_counter() - t, 1)
        held_out = json.load(open(os.path.join(run, "history.json")))["held_out"]
        print("%s: trained in %.0f s: %s" % (name, seconds, held_out), flush=True)
        bundle = os.path.join(work, "bundle-%d" % len(networks))
        cli("export", "onnx", run, "--out", bundle)
        networks.append((name, bundle, {"train_seconds": seconds, "held_out": held_out}))
    networks.append(("road views (checked in)", os.path.join(ROOT, "tests", "runtime", "bundles", "pilotnet"), {}))
    rows = report["rows"] = []
    for name, path, trained in networks:
        link = through_the_link(path, args.drive_seconds, work)
        own = os.path.join(work, "own-%s.json" % os.path.basename(path))
        cli("runtime", "drive", path, "--seconds", args.drive_seconds, "--backend", "onnxruntime", "--json", own)
        own = json.load(open(own))
        rows.append({"network": name, **trained, "link_autonomy": link["autonomy"],
                     "link_interventions": link["interventions"],
                     "link_mean_abs_offset_m": link["mean_abs_offset_m"], "received": link["received"],
                     "control_latency_ms": link["control_latency_ms"], "drive_autonomy": own["autonomy"],
                     "drive_interventions": own["interventions"], "drive_mean_abs_offset_m": own["mean_abs_offset_m"]})
        r = rows[-1]
        print("%-24s through the link: autonomy %5.1f%% (%d interventions, mean |offset| %.3f m), control latency "
              "p50 %.1f ms p95 %.1f ms; runtime drive: %5.1f%% (%d)" % (
                  name, r["link_autonomy"], r["link_interventions"], r["link_mean_abs_offset_m"],
                  r["control_latency_ms"]["p50"], r["control_latency_ms"]["p95"], r["drive_autonomy"],
                  r["drive_interventions"]), flush=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
