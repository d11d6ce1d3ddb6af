"""Make the two small bundles the runtime's own tests use (tests/runtime/bundles/), with the project's
own commands: train (seeded, deterministic), then export onnx with 12 of the run's held-out samples.

    .venv/bin/python tests/runtime/make_bundles.py      # needs TensorFlow: on the desktop, by hand

They are checked in so that `make test-board` runs on a board that has no TensorFlow (and gives the same
verdict everywhere: the weights are fixed, not retrained per machine). Run it again when the bundle format
or the zoo's PilotNet/MNIST CNN change, and commit the result.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLES = 12
BUNDLES = {  # name: train's arguments
    "pilotnet": ["--model", "pilotnet", "--data", "road", "--limit", "1500", "--epochs", "5"],
    "digits": ["--model", "mnist_cnn", "--data", "digits", "--epochs", "6"],
}


def main():
    env = dict(os.environ, PYTHONPATH=ROOT)
    for name, args in BUNDLES.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = os.path.join(tmp, "run")
            subprocess.run([sys.executable, "-m", "train"] + args + ["--out", run], cwd=ROOT, env=env, check=True)
            samples = os.path.join(tmp, "samples")
            os.makedirs(samples)
            for file in sorted(f for f in os.listdir(os.path.join(run, "samples")) if f.endswith(".png"))[:SAMPLES]:
                shutil.copy(os.path.join(run, "samples", file), samples)
            out = os.path.join(HERE, "bundles", name)
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "export", "onnx", run, "--out", out, "--samples", samples],
                           cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
