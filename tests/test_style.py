"""The runtime stays installable on a Jetson: Python 3.8 syntax and library, no TensorFlow at import."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_runtime_needs_nothing_newer_than_python_3_8():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    proc = subprocess.run([vermin, "--no-tips", "--violations", "-t=3.8-",
                           "--eval-annotations", "--backport", "typing", "runtime"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runtime_modules_import_no_heavy_package_at_load():
    code = ("import sys, importlib, pkgutil, runtime, runtime.backends\n"
            "for m in pkgutil.walk_packages(runtime.__path__, 'runtime.'):\n"
            "    importlib.import_module(m.name)\n"
            "heavy = ('tensorflow', 'keras', 'cv2', 'onnxruntime', 'tensorrt', 'pycuda', 'train', 'export')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_pyproject_lists_every_package_so_a_wheel_has_them_all():
    """pyproject.toml names its packages: one added as a folder but not there would be missing from
    `pip install .` (the editable installs the tests use would not notice)."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = {os.path.relpath(folder, ROOT).replace(os.sep, ".")
             for top in ("train", "export", "runtime") for folder, _, files in os.walk(os.path.join(ROOT, top))
             if "__init__.py" in files}
    assert listed == found
