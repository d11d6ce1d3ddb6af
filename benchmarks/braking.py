"""The car that brakes on `traffic`, measured (issue 33's targets: 0 collisions and at most 1 false stop per km with
the FP32 and FP16 detector), not in CI:

    .venv/bin/python benchmarks/braking.py --seed 2016 [--seconds 40] [--runs fp32,ground-truth]    # one seed
    .venv/bin/python benchmarks/braking.py --table                      # the table over the seeds run so far

Each --seed run drives traffic on that seed with the checked-in PilotNet steering (fp32) and each braker: the
checked-in detector at fp32, fp16 and int8 (variants made in a temporary copy by `python -m export variants
--calib-data road-obstacles`, where the bundle has none), the same detector with the free-space bundle (fp32),
braking on the exact boxes (ground truth: the ceiling) and never seeing (the floor), and adds the drives to
benchmarks/results/braking.json (a seed and a few runs at a time, so no job holds 2 shared cores for long: a
40 s detector drive takes about 40 s on a quiet core, free space's about twice that). --table prints
the summary per braker: means with 95% Student t intervals over the seeds (brake_drive.summarise), time lost
against the ground truth of the same seed, and false stops per km over all the distance driven.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
OUT = os.path.join(HERE, "results", "braking.json")
BUNDLES = os.path.join(ROOT, "tests", "runtime", "bundles")


def detector_with_variants(tmp):
    src = os.path.join(BUNDLES, "detector")
    with open(os.path.join(src, "manifest.json")) as f:
        if {"fp16", "int8"} <= set(json.load(f).get("variants") or {}):
            return src
    dest = os.path.join(tmp, "detector")
    shutil.copytree(src, dest)
    subprocess.run([sys.executable, "-m", "export", "variants", dest, "--calib-data", "road-obstacles",
                    "--calib-frames", "100"], cwd=ROOT, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return dest


RUNS = ("fp32", "fp16", "int8", "fp32+freespace", "ground-truth", "never-sees")


def run_seed(seed, seconds, runs):
    from runtime import Model
    from runtime.sim import brake_drive
    from runtime.sim.scenarios import SCENARIOS

    scenario = SCENARIOS["traffic"]
    tmp = tempfile.mkdtemp()
    reports = []
    try:
        pilot = Model(os.path.join(BUNDLES, "pilotnet"))
        for run in runs:
            if run in ("ground-truth", "never-sees"):
                card = brake_drive.drive(pilot, seconds, seed, scenario, braker=run)
            else:
                precision = run.split("+")[0]
                det = Model(detector_with_variants(tmp) if precision != "fp32" else os.path.join(BUNDLES, "detector"),
                            precision=None if precision == "fp32" else precision)
                fs = Model(os.path.join(BUNDLES, "freespace")) if run.endswith("+freespace") else None
                card = brake_drive.drive(pilot, seconds, seed, scenario, detector=det, freespace=fs, precision=run)
            r = card.report()
            reports.append(r)
            print(seed, run, {k: r[k] for k in ("collisions", "stops_before_obstacles", "false_stops", "distance_m")},
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = json.load(open(OUT)) if os.path.exists(OUT) else {"seconds": seconds, "drives": []}
    if results["seconds"] != seconds:
        raise SystemExit("%s holds %g s drives: remove it to run %g s ones" % (OUT, results["seconds"], seconds))
    done = {(r["seed"], r["braker"], r["precision"]) for r in reports}
    results["drives"] = [d for d in results["drives"] if (d["seed"], d["braker"], d["precision"]) not in done]
    results["drives"] += reports
    with open(OUT, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote %s" % OUT)


def table():
    from runtime.sim import brake_drive
    from runtime.sim.scenarios import SCENARIOS

    speed = SCENARIOS["traffic"].speed_mps

    results = json.load(open(OUT))
    truth = {d["seed"]: d["distance_m"] for d in results["drives"] if d["braker"] == "ground-truth"}
    groups = {}
    for d in results["drives"]:
        d["time_lost_s"] = round((truth[d["seed"]] - d["distance_m"]) / speed, 3) if d["seed"] in truth else None
        groups.setdefault((d["braker"], d["precision"]), []).append(d)
    print("| braker | precision | seeds | collisions | stops before obstacles | in-lane obstacles met | false stops "
          "| false stops per km (all km) | time lost s | km |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (braker, precision), drives in groups.items():
        row = brake_drive.summarise(drives)
        km = row["distance_km"]
        false = sum(d["false_stops"] for d in drives)

        def cell(key, digits=1, row=row):
            s = row[key]
            if s is None:
                return "-"
            return "%.*f" % (digits, s["mean"]) + ("" if s["low"] is None else " ± %.*f" % (
                digits, (s["high"] - s["low"]) / 2))
        print("| %s | %s | %d | %s | %s | %d | %d | %.2f | %s | %.3f |" % (
            braker, precision, len(drives), cell("collisions"), cell("stops_before_obstacles"),
            row["obstacles_met"], false, false / km if km else 0.0, cell("time_lost_s"), km))
    print("(%g simulated s a drive; seeds %s)" % (results["seconds"], sorted({d["seed"] for d in results["drives"]})))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int)
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--runs", default=",".join(RUNS), help="which of %s (default: all)" % ", ".join(RUNS))
    p.add_argument("--table", action="store_true")
    args = p.parse_args()
    runs = args.runs.split(",")
    if set(runs) - set(RUNS):
        p.error("--runs: choose from %s" % ", ".join(RUNS))
    if args.seed is not None:
        run_seed(args.seed, args.seconds, runs)
    if args.table:
        table()


if __name__ == "__main__":
    main()
