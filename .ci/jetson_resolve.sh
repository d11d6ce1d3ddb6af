#!/usr/bin/env bash
# CI setup step (needs the package registries): what jetson_setup.sh would pip-install on each JetPack,
# resolved by pip for the board (aarch64 wheels for that JetPack's Python and glibc), so that the tests can check it
# without a board and without the network (tests/test_jetson_setup.py, tests/test_python38.py).
#
#   .ci/jetson_resolve.sh [--refresh]
#
# The requirements come from `jetson_setup.sh --print-requirements JETPACK`, the one place both read, so they
# cannot drift. For each JetPack it writes, under .cache/jetson-resolve/ (git-ignored; JETSON_RESOLVE_CACHE
# moves it):
#   jpN.json          pip's installation report (`pip install --dry-run --report`) for the runtime's line
#   jpN.requirements  what was resolved, with a key over it and pyproject.toml (the tests compare it to now)
#   jpN-pycuda/       the pycuda source pip would build on the board (an sdist: --platform cannot resolve it):
#                     its pycuda/ package and VERSION, for the Python-version check, and its setup.py,
#                     configure.py and aksetup_helper.py, for the check that jetson_setup.sh turns CURAND off
# Cached: a JetPack is resolved again only when its requirements or pyproject.toml change, or with --refresh.
# PYTHON picks the interpreter whose pip resolves (default .venv/bin/python, else python3; pip >= 22.2).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${JETSON_RESOLVE_CACHE:-.cache/jetson-resolve}"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
REFRESH=0
case "${1:-}" in
    "") ;;
    --refresh) REFRESH=1 ;;
    *) echo "jetson_resolve.sh: error: unknown option $1 (usage: .ci/jetson_resolve.sh [--refresh])" >&2; exit 2 ;;
esac
mkdir -p "$CACHE"

for jp in 5 6 7; do
    reqs="$(bash jetson_setup.sh --print-requirements "$jp")"
    key="$( { echo "$reqs"; cat pyproject.toml; echo "layout 2"; } | sha256sum | cut -c1-16)"
    stamp="$CACHE/jp$jp.requirements"
    if [[ $REFRESH -eq 0 && -f "$CACHE/jp$jp.json" && -f "$CACHE/jp$jp-pycuda/VERSION" && -f "$stamp" ]] \
        && [[ "$(tail -n 1 "$stamp")" == "key $key" ]]; then
        echo "JetPack $jp: cached ($CACHE/jp$jp.json)"
        continue
    fi
    python="$(sed -n 's/^python //p' <<<"$reqs")"
    glibc="$(sed -n 's/^glibc //p' <<<"$reqs")"
    # every manylinux tag that board's glibc runs (pip does not widen --platform to older glibc tags itself)
    platforms=(--platform manylinux2014_aarch64)
    for minor in $(seq 17 "${glibc#2.}"); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    read -r -a runtime <<<"$(sed -n 's/^runtime //p' <<<"$reqs")"
    pycuda="$(sed -n 's/^pycuda //p' <<<"$reqs")"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # --ignore-installed: the whole set, as in a fresh venv (the board's venv also sees the system's numpy,
    # which pip replaces whenever the set needs another).
    # (pip's own output only when it fails: building the project's metadata prints setuptools' notes)
    "$PYTHON" -m pip install --quiet --dry-run --report "$work/report.json" --ignore-installed \
        "${platforms[@]}" --python-version "$python" --only-binary=:all: --target "$work/target" \
        "${runtime[@]}" 2>"$work/pip.log" || { cat "$work/pip.log" >&2; exit 1; }
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation -d "$work/sdist" "$pycuda" \
        2>"$work/pip.log" || { cat "$work/pip.log" >&2; exit 1; }
    sdist="$(ls "$work"/sdist/pycuda-*.tar.gz)"
    version="$(basename "$sdist" .tar.gz)"
    version="${version#pycuda-}"
    mkdir -p "$work/pycuda"
    # its package (the Python-version check) and its build configuration (the CURAND-off check)
    tar -xzf "$sdist" -C "$work/pycuda" --strip-components=1 "pycuda-$version/pycuda" "pycuda-$version/setup.py" \
        "pycuda-$version/configure.py" "pycuda-$version/aksetup_helper.py"
    echo "$version" >"$work/pycuda/VERSION"
    rm -rf "$CACHE/jp$jp-pycuda"
    mv "$work/pycuda" "$CACHE/jp$jp-pycuda"
    mv "$work/report.json" "$CACHE/jp$jp.json"
    { echo "$reqs"; echo "key $key"; } >"$stamp"
    rm -rf "$work"
    trap - EXIT
    numpy="$("$PYTHON" -c 'import json, sys
print(" ".join("%s %s" % (i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(open(sys.argv[1]))["install"]
               if i["metadata"]["name"] in ("numpy", "onnxruntime")))' "$CACHE/jp$jp.json")"
    echo "JetPack $jp (Python $python, glibc $glibc, aarch64): $numpy, pycuda $version -> $CACHE/jp$jp.json"
done
