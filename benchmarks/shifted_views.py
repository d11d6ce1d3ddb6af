"""PilotNet's lesson, measured by the closed-loop judge (issue 33), not in CI: does training on shifted views
teach a network to recover from drift? Two PilotNets per training seed, made by `python -m train` with the same
seed, data and epochs, differ only in `--augment shift --shift-correction 0.49`. Both learn from `--road-views
centred` (what a careful driver's camera sees: within about 0.1 m of the lane's centre), so the shifted views are
their only lesson in recovery. Each is exported and driven by `runtime drive --scenario` on the fixed seeds of
calm, gusts and latency (docs/simulator.md); autonomy is compared by its 95% interval over the track seeds.

    .venv/bin/python benchmarks/shifted_views.py --train-seed 0            # train, export, drive one pair
    .venv/bin/python benchmarks/shifted_views.py --table                   # the table over the pairs run so far

Each pair's runs and bundles go to benchmarks/results/work/shifted_views/ (ignored by git); the drives' rows are
added to benchmarks/results/shifted_views.json. A pair takes about 2 minutes to train and export and, at the
defaults (5 seeds, 60 simulated s, three scenarios), about 6 minutes to drive on 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "results", "shifted_views.json")
WORK = os.path.join(HERE, "results", "work", "shifted_views")
VARIANTS = {"no-shift": [], "shift": ["--augment", "shift", "--shift-correction", "0.49"]}
SCENARIOS = ("calm", "gusts", "latency")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")


def _call(args, log):
    with open(log, "w") as f:
        subprocess.run([sys.executable] + args, cwd=ROOT, check=True, env=ENV, stdout=f, stderr=subprocess.STDOUT)


def made(variant, train_seed, epochs):
    """The bundle of one variant and training seed, trained and exported unless it is there already."""
    name = "%s-seed%d-e%d" % (variant, train_seed, epochs)
    run, bundle = os.path.join(WORK, "runs", name), os.path.join(WORK, "bundles", name)
    if not os.path.exists(os.path.join(bundle, "manifest.json")):
        os.makedirs(os.path.dirname(run), exist_ok=True)
        os.makedirs(os.path.dirname(bundle), exist_ok=True)
        print("training %s" % name, flush=True)
        _call(["-m", "train", "--model", "pilotnet", "--data", "road", "--road-views", "centred", "--seed",
               str(train_seed), "--epochs", str(epochs), "--out", run, "--force"] + VARIANTS[variant], run + ".log")
        _call(["-m", "export", "onnx", run, "--out", bundle], bundle + ".log")
    with open(os.path.join(run, "meta.json")) as f:
        held_out = json.load(f).get("held_out")
    return bundle, held_out


def drive(bundle, scenario, seeds, seconds):
    """runtime drive's summarised row for one scenario (autonomy etc. with 95% intervals, and each drive)."""
    out = os.path.join(bundle, "drive-%s-%d-%g.json" % (scenario, seeds, seconds))
    _call(["-m", "runtime", "drive", bundle, "--scenario", scenario, "--seeds", str(seeds), "--seconds", str(seconds),
           "--json", out], out + ".log")
    with open(out) as f:
        row, = json.load(f)["rows"]
    return row


def load():
    if os.path.exists(OUT):
        with open(OUT) as f:
            return json.load(f)
    return {"about": __doc__.split("\n\n")[0].replace("\n", " "), "rows": []}


def run_pair(train_seed, epochs, seeds, seconds, scenarios):
    results = load()
    for variant in VARIANTS:
        bundle, held_out = made(variant, train_seed, epochs)
        for scenario in scenarios:
            row = drive(bundle, scenario, seeds, seconds)
            keep = {k: row[k] for k in ("autonomy", "interventions", "collisions", "mean_abs_offset_m",
                                         "max_abs_offset_m")}
            results["rows"] = [r for r in results["rows"] if (r["variant"], r["train_seed"], r["epochs"],
                                                              r["scenario"]) != (variant, train_seed, epochs,
                                                                                 scenario)]
            results["rows"].append(dict(variant=variant, train_seed=train_seed, epochs=epochs, scenario=scenario,
                                        seeds=seeds, seconds=seconds, held_out=held_out, **keep))
            print("%-9s seed %d %-8s autonomy %s" % (variant, train_seed, scenario, _cell(keep["autonomy"])),
                  flush=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=1)


def _cell(stat, digits=1):
    if stat["low"] is None:
        return "%.*f" % (digits, stat["mean"])
    return "%.*f [%.*f, %.*f]" % (digits, stat["mean"], digits, stat["low"], digits, stat["high"])


def verdict(a, b):
    """Whether two autonomy intervals are apart, overlap, or are the same single value (every drive 100%)."""
    if a["low"] is None or b["low"] is None:
        return "one seed"
    if (a["low"], a["high"]) == (b["low"], b["high"]) == (a["mean"], a["mean"]):
        return "same"
    return "apart" if a["high"] < b["low"] or b["high"] < a["low"] else "overlap"


def table():
    """Per training seed and scenario: both variants' autonomy with intervals, whether they are apart, and the
    offsets; then the drives pooled over the training seeds."""
    rows = load()["rows"]
    keys = sorted({(r["train_seed"], r["epochs"], r["scenario"]) for r in rows},
                  key=lambda k: (SCENARIOS.index(k[2]) if k[2] in SCENARIOS else 99, k[0], k[1]))
    print("| scenario | train seed | track seeds x s | autonomy %, no shift | autonomy %, shift | intervals | "
          "interventions, no shift / shift | mean / max abs offset m, no shift | mean / max abs offset m, shift |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed, epochs, scenario in keys:
        got = {r["variant"]: r for r in rows if (r["train_seed"], r["epochs"], r["scenario"]) == (seed, epochs,
                                                                                                   scenario)}
        if set(got) != set(VARIANTS):
            continue
        a, b = got["no-shift"], got["shift"]
        print("| %s | %d | %d x %g | %s | %s | %s | %d / %d | %.3f / %.2f | %.3f / %.2f |" % (
            scenario, seed, b["seeds"], b["seconds"], _cell(a["autonomy"]), _cell(b["autonomy"]),
            verdict(a["autonomy"], b["autonomy"]), sum(a["interventions"]["values"]),
            sum(b["interventions"]["values"]), a["mean_abs_offset_m"]["mean"], max(a["max_abs_offset_m"]["values"]),
            b["mean_abs_offset_m"]["mean"], max(b["max_abs_offset_m"]["values"])))
    print("held-out MAE ratio (validation on recovery views), no shift / shift, per training seed: %s" % ", ".join(
        "%d: %.3f / %.3f" % (s, *(next(r["held_out"]["mae_ratio"] for r in rows if r["train_seed"] == s and
                                       r["variant"] == v) for v in VARIANTS))
        for s in sorted({r["train_seed"] for r in rows})))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-seed", type=int, help="train, export and drive the pair of this training seed")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5, help="track seeds per scenario (default 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds a drive (default 60)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--table", action="store_true", help="print the table of the pairs run so far")
    args = parser.parse_args()
    if args.train_seed is not None:
        run_pair(args.train_seed, args.epochs, args.seeds, args.seconds, args.scenarios.split(","))
    if args.table or args.train_seed is None:
        table()


if __name__ == "__main__":
    main()
