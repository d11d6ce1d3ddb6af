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


def _python_files(*tops):
    for top in tops:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__pycache__" in folder or os.sep + "mcu" in folder:  # mcu/: MicroPython, copied to a board
                continue
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def test_no_function_is_over_60_lines():
    """Issue 28: a function a reader can hold in view (decorators not counted)."""
    import ast

    long = []
    for path in _python_files("train", "export", "runtime"):
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append("%s:%d %s (%d lines)" % (os.path.relpath(path, ROOT), node.lineno, node.name,
                                                     node.end_lineno - node.lineno + 1))
    assert not long, long


def _module_of(path):
    name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def test_no_import_cycle_in_train_export_or_runtime():
    """Every import counts, those inside functions too (they hid a 10-module cycle at run time): the graph of the
    three packages' modules has no cycle. `from pkg import name` is an edge to pkg.name where that is a module."""
    import ast

    modules = {_module_of(p): p for p in _python_files("train", "export", "runtime")}
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [base + "." + a.name if base + "." + a.name in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    cycles, state = [], {}

    def visit(module, trail):  # depth-first; a module met again on the trail closes a cycle
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                cycles.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_the_import_contracts_hold():
    """pyproject.toml's import-linter contracts: the commands above the wings, the wings above the core, and
    runtime apart from train and export. import-linter is in the lint extra for Python 3.11+ only."""
    linter = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if sys.version_info < (3, 11) or not os.path.exists(linter):
        import pytest

        pytest.skip("import-linter is the lint extra's, for Python 3.11+ (pip install -e '.[lint]')")
    proc = subprocess.run([linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_the_core_contract_names_every_core_module():
    """The contract "the core never imports a wing" lists the core's modules by name: one added to runtime/
    but not to the list would escape it."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    core = next(c for c in contracts if "core never imports" in c["name"])
    wings = set(core["forbidden_modules"])
    found = {"runtime." + name[:-3] if name.endswith(".py") else "runtime." + name
             for name in os.listdir(os.path.join(ROOT, "runtime"))
             if (name.endswith(".py") and name not in ("__init__.py", "__main__.py"))
             or os.path.exists(os.path.join(ROOT, "runtime", name, "__init__.py"))}
    assert set(core["source_modules"]) == found - wings
