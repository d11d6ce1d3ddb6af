"""The procedural road's renderer, this tree's against another revision's, side by side in one run.

    .venv/bin/python benchmarks/road_render.py [--against HEAD~1] [--frames 150] [--repeats 5]

Both renderers draw the same continuous drive (road.Track poses, the same scene and noise draws) at 200x110
(PilotNet's crop size: what `runtime drive` renders), 320x180 (train's road frames) and 640x360
(synthetic://road's default), in one thread. The two alternate, repeat by repeat, and the best repeat of each
counts. Prints frames per second and the ratio, and the largest pixel difference between the two; writes
nothing.
"""

import argparse
import os
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SIZES = ((200, 110), (320, 180), (640, 360))


def road_at(revision):
    """runtime.sim.road as it was at a git revision (its own module, beside this tree's)."""
    source = subprocess.run(["git", "show", "%s:runtime/sim/road.py" % revision], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("road_at_%s" % revision.replace("~", "_").replace("^", "_"))
    exec(compile(source, "%s:runtime/sim/road.py" % revision, "exec"), module.__dict__)
    return module


def poses(n, seed=11):
    """n poses along a drive: (d, psi, k, dk, travelled), and the scene of each, from this tree's Track."""
    import numpy as np

    from runtime.sim import road

    track, rng, out = road.Track(np.random.RandomState(seed)), np.random.RandomState(seed + 1), []
    d = psi = 0.0
    for _ in range(n):
        out.append((d, psi, track.k, track.dk, track.travelled, track.scene))
        track.bend(0.5)
        d, psi = road.move(d, psi, track.k, road.steering_label(d, psi, track.k, track.dk) / 10.0 + rng.normal(0, 2e-3),
                           0.5)
        track.travel(0.5)
    return out


def render_all(module, size, drive, seed=11):
    import numpy as np

    renderer = module.RoadRenderer(size[0], size[1], seed)
    noise = np.random.RandomState(seed + 2)
    t0 = time.perf_counter()
    frames = [renderer.render(d, psi, k, dk, travelled, scene, noise) for d, psi, k, dk, travelled, scene in drive]
    return len(drive) / (time.perf_counter() - t0), frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import numpy as np

    from runtime.sim import road

    other = road_at(args.against)
    drive = poses(args.frames)
    print("%-9s %14s %14s %7s %9s" % ("size", "this tree FPS", args.against + " FPS", "ratio", "max diff"))
    for size in SIZES:
        best = {"this": 0.0, "other": 0.0}
        for _ in range(args.repeats):
            fps_this, mine = render_all(road, size, drive)
            fps_other, theirs = render_all(other, size, drive)
            best["this"], best["other"] = max(best["this"], fps_this), max(best["other"], fps_other)
        diff = max(int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(mine, theirs))
        print("%-9s %14.0f %14.0f %6.2fx %9d" % ("%dx%d" % size, best["this"], best["other"],
                                                best["this"] / best["other"], diff), flush=True)


if __name__ == "__main__":
    main()
