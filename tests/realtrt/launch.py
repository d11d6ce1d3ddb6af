"""Run `python -m MODULE ARGS` against NVIDIA's REAL tensorrt of one version (unpacked by
.ci/real_tensorrt.sh into .realtrt/VERSION/), in place of any other tensorrt on the path:

    python -m tests.realtrt.launch 10.3.0 export engine BUNDLE

It puts the stub libraries on LD_LIBRARY_PATH (re-executing itself, since the dynamic loader reads it at
start-up) and the real module first on sys.path; the FAKE pycuda stays usable behind it (tests/conftest.py's
cli(..., fake_gpu=...)), which makes "a GPU that pycuda sees, a TensorRT that cannot start CUDA".
"""

import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def real_dir(version):
    return os.path.join(ROOT, ".realtrt", version)


def main():
    version, module = sys.argv[1], sys.argv[2]
    lib = os.path.join(real_dir(version), "lib")
    if os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)[0] != lib:
        env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join([lib, os.environ.get("LD_LIBRARY_PATH", "")]))
        os.execve(sys.executable, [sys.executable, "-m", "tests.realtrt.launch"] + sys.argv[1:], env)
    sys.path.insert(0, os.path.join(real_dir(version), "site"))
    sys.argv = ["python -m %s" % module] + sys.argv[3:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
