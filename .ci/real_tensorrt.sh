#!/usr/bin/env bash
# CI setup step: NVIDIA's real TensorRT Python bindings, without a GPU, for tests/runtime/backends/tensorrt/test_real_tensorrt.py.
# For each wheel in tests/realtrt/wheels.txt: pip downloads it (binary only, for the Python that runs the
# tests), it is unpacked into .realtrt/<version>/site/tensorrt/, and stub libraries with the SONAMEs its
# tensorrt.so links (libnvinfer.so.N, libnvonnxparser.so.N, libnvinfer_plugin.so.N, libnvparsers.so.8 for 8.x)
# are built from tests/realtrt/*.c with the system gcc into .realtrt/<version>/lib/. Every symbol that
# `nm -D --undefined-only tensorrt.so` wants from those libraries must be in a stub, and `import tensorrt`
# must load the real module, or this fails. Idempotent: a finished version (.realtrt/<version>/READY) is
# skipped, so a second run takes a second. Wheels are fetched here only, never by the tests.
#   PYTHON=/path/to/python .ci/real_tensorrt.sh     (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.realtrt
SRC=$ROOT/tests/realtrt
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$CACHE"

command -v gcc >/dev/null && command -v nm >/dev/null || {
    echo "real_tensorrt.sh: needs gcc and nm (apt-get install gcc binutils)" >&2; exit 1; }

pip_download() {  # any pip will do: the wheel is chosen for $PYVER by its tags
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        "$PYTHON" -m pip "$@"
    else
        [ -x "$CACHE/.pip/bin/pip" ] || python3 -m venv "$CACHE/.pip"
        "$CACHE/.pip/bin/pip" "$@"
    fi
}

while read -r requirement _; do
    case "$requirement" in ''|\#*) continue ;; esac
    version=${requirement#*==}
    dest=$CACHE/$version
    if [ -f "$dest/READY" ] && [ "$(cat "$dest/READY")" = "$PYVER" ]; then
        echo "real TensorRT $version: ready in $dest"
        continue
    fi
    rm -rf "$dest"
    mkdir -p "$dest/wheel" "$dest/site" "$dest/lib"
    pip_download download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --implementation cp -d "$dest/wheel" "$requirement"
    "$PYTHON" -m zipfile -e "$dest"/wheel/*.whl "$dest/unpacked"
    mv "$dest/unpacked/tensorrt_bindings" "$dest/site/tensorrt"   # the package JetPack installs as `tensorrt`
    so=$(ls "$dest"/site/tensorrt/tensorrt*.so)
    major=${version%%.*}
    libs="nvinfer nvonnxparser nvinfer_plugin"
    [ "$major" = 8 ] && libs="$libs nvparsers"
    for lib in $libs; do
        gcc -shared -fPIC -O1 -Wall -Werror -Wl,-soname,lib$lib.so.$major -o "$dest/lib/lib$lib.so.$major" "$SRC/$lib.c"
    done
    # every undefined symbol of tensorrt.so that Python, the C library and libstdc++ do not give (those carry
    # a version, name@GLIBC_2.2.5) must be in a stub
    wanted=$(nm -D --undefined-only "$so" | awk '$1 == "U" {print $2}' | grep -v '@' | grep -vE '^_?Py' | sort -u)
    given=$(for l in "$dest"/lib/*.so.*; do nm -D --defined-only "$l" | awk '{print $3}'; done | sort -u)
    missing=$(comm -23 <(echo "$wanted") <(echo "$given") | grep -vE '^(dl(open|sym|close|error)|pthread_.*)$' || true)
    if [ -n "$missing" ]; then
        echo "real_tensorrt.sh: $requirement wants symbols no stub gives: $missing" >&2; exit 1
    fi
    LD_LIBRARY_PATH="$dest/lib" PYTHONPATH="$dest/site" "$PYTHON" -c \
        "import tensorrt, sys; assert tensorrt.__version__ == sys.argv[1], tensorrt.__version__" "$version"
    rm -rf "$dest/unpacked"
    echo "$PYVER" > "$dest/READY"
    echo "real TensorRT $version: unpacked into $dest (stub libraries: $libs)"
done < "$SRC/wheels.txt"
