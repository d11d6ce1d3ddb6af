#!/usr/bin/env bash
# jetson_setup.sh: turn a Jetson (JetPack 5, 6 or 7) into a ready runtime, then say what is ready.
#
#   ./jetson_setup.sh [--max-perf] [--swap SIZE] [--venv DIR] [--yes] [--dry-run] [--root DIR]
#
# It detects the board and its L4T release (R35 = JetPack 5, R36 = JetPack 6, R38 and later = JetPack 7),
# reads the real TensorRT, CUDA and Python versions from the system, installs with apt what JetPack
# provides (TensorRT's Python bindings, GStreamer's plugins, an OpenCV with GStreamer where there is none;
# never a pip OpenCV over it), makes a venv with --system-site-packages (so it sees the system's tensorrt
# and cv2), installs the runtime into it with numpy below 2 and without TensorFlow, builds pycuda against
# CUDA, checks the video group, and ends with `python -m runtime doctor`. Idempotent: each step is checked
# first, and a second run changes nothing and says so.
set -euo pipefail

PROG=jetson_setup.sh
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT=/
DRY=0
MAX_PERF=0
SWAP=""
YES=0
VENV="$REPO/.venv"
ACTIONS=0

usage() {
    cat <<EOF
usage: $PROG [--max-perf] [--swap SIZE] [--venv DIR] [--yes] [--dry-run] [--root DIR]

Sets up this Jetson for the runtime: apt packages (TensorRT's Python bindings, GStreamer, OpenCV with
GStreamer), a venv with --system-site-packages and the runtime in it (numpy < 2), pycuda built against
CUDA, the video group; then runs python -m runtime doctor. Safe to run again: done steps are skipped.

  --max-perf    switch to the MAXN power mode (read from /etc/nvpmodel.conf) and lock clocks (jetson_clocks)
  --swap SIZE   make and enable a swap file of SIZE (e.g. 8G); Nano-class boards need it to build engines
  --venv DIR    where the venv goes (default: $REPO/.venv)
  --yes         consent to adding you to the video group without asking
  --dry-run     print every action, change nothing
  --root DIR    read the system's files under DIR (for tests; changes are refused there)
  -h, --help    this text
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --max-perf) MAX_PERF=1 ;;
        --swap) [[ $# -ge 2 ]] || die "--swap needs a size, as in --swap 8G"; SWAP="$2"; shift ;;
        --venv) [[ $# -ge 2 ]] || die "--venv needs a folder"; VENV="$2"; shift ;;
        --root) [[ $# -ge 2 ]] || die "--root needs a folder"; ROOT="$2"; shift ;;
        --yes|-y) YES=1 ;;
        --dry-run|-n) DRY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see $PROG --help)" ;;
    esac
    shift
done
[[ -z "$SWAP" || "$SWAP" =~ ^[1-9][0-9]*[MG]$ ]] || die "--swap $SWAP: give a size such as 4G or 8192M"
[[ -d "$ROOT" ]] || die "--root $ROOT is not a folder"
ROOT="${ROOT%/}/"
SUDO=""
[[ $EUID -eq 0 ]] || SUDO="sudo"

# Do (or, with --dry-run, print) one change. Under --root nothing is ever changed.
act() {
    ACTIONS=$((ACTIONS + 1))
    local shown
    if [[ "$1" == --show ]]; then shown="$2 "; shift 2; else shown="$(printf '%q ' "$@")"; fi
    if [[ $DRY -eq 1 ]]; then
        echo "would run: ${shown% }"
    elif [[ "$ROOT" != "/" ]]; then
        die "refusing to change a system read under --root $ROOT (add --dry-run): ${shown% }"
    else
        echo "+ ${shown% }"
        "$@" || die "failed: ${shown% }"
    fi
}
ok() { echo "ok: $*"; }

dpkg_field() { dpkg-query --admindir="${ROOT}var/lib/dpkg" -W -f="\${$2}" "$1" 2>/dev/null || true; }
installed() { [[ "$(dpkg_field "$1" Status)" == "install ok installed" ]]; }
upstream() { local v; v="$(dpkg_field "$1" Version)"; v="${v#*:}"; echo "${v%%[-+~]*}"; }

# --- which Jetson, which release ------------------------------------------------------------------
release_file="${ROOT}etc/nv_tegra_release"
if [[ -f "$release_file" ]]; then
    line="$(head -n 1 "$release_file")"
    major="$(sed -n 's/^# R\([0-9][0-9]*\) (release), REVISION: \([0-9.]*\).*/\1/p' <<<"$line")"
    revision="$(sed -n 's/^# R\([0-9][0-9]*\) (release), REVISION: \([0-9.]*\).*/\2/p' <<<"$line")"
    [[ -n "$major" ]] || die "cannot read the L4T release from $release_file: '$line'"
    l4t="$major.${revision%,}"
elif installed nvidia-l4t-core; then
    l4t="$(upstream nvidia-l4t-core)"
    major="${l4t%%.*}"
else
    die "not a Jetson (no ${ROOT}etc/nv_tegra_release, no nvidia-l4t-core package): this script sets up a Jetson; on a desktop use make setup (see README.md)"
fi
case "$major" in
    35) jetpack=5 ;;
    36) jetpack=6 ;;
    3[0-4]|2[0-9]) die "L4T R$l4t is JetPack 4 or older (TensorRT 8.0-8.2, Python 3.6): too old for this runtime; flash JetPack 5.1 or later" ;;
    *) if [[ "$major" -ge 38 ]]; then jetpack=7; else die "L4T R$l4t is not a release this script knows (R35 = JetPack 5, R36 = 6, R38+ = 7)"; fi ;;
esac
model="unknown Jetson"
[[ -r "${ROOT}proc/device-tree/model" ]] && model="$(tr -d '\0' <"${ROOT}proc/device-tree/model")"

trt="$(upstream python3-libnvinfer)"; [[ -n "$trt" ]] || trt="$(upstream tensorrt)"
cuda=""
if [[ -f "${ROOT}usr/local/cuda/version.json" ]]; then
    cuda="$(sed -n '/"cuda"/,/}/s/.*"version" *: *"\([0-9.]*\)".*/\1/p' "${ROOT}usr/local/cuda/version.json" | head -n 1)"
elif [[ -f "${ROOT}usr/local/cuda/version.txt" ]]; then
    cuda="$(sed -n 's/^CUDA Version \([0-9.]*\).*/\1/p' "${ROOT}usr/local/cuda/version.txt")"
fi
python="$(upstream python3)"
echo "Jetson: $model, L4T R$l4t = JetPack $jetpack; TensorRT ${trt:-not installed yet}, CUDA ${cuda:-not found}, Python ${python:-?}"

# --- apt: what JetPack provides ---------------------------------------------------------------------
packages=(python3-libnvinfer python3-venv python3-pip python3-dev python3-gi gir1.2-gst-rtsp-server-1.0
          gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
          gstreamer1.0-libav)
if ! installed libopencv-python && ! installed python3-opencv && ! installed nvidia-opencv; then
    if [[ $jetpack -ge 7 ]]; then packages+=(python3-opencv); else packages+=(nvidia-opencv); fi
fi
[[ -x "${ROOT}usr/local/cuda/bin/nvcc" ]] || packages+=(nvidia-cuda-dev)   # pycuda compiles against CUDA
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [[ ${#missing[@]} -eq 0 ]]; then
    ok "apt packages (TensorRT bindings, GStreamer, OpenCV with GStreamer, CUDA headers) are installed"
else
    act $SUDO apt-get update
    act $SUDO apt-get install -y "${missing[@]}"
fi

# --- the venv and the runtime in it ------------------------------------------------------------------
if [[ -x "$VENV/bin/python" ]]; then
    grep -q "include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null \
        || die "$VENV exists but does not see the system's packages (tensorrt, cv2): remove it, or pass --venv DIR"
    ok "venv $VENV (with --system-site-packages)"
else
    act python3 -m venv --system-site-packages "$VENV"
fi
check_runtime='import numpy, onnxruntime, runtime; assert int(numpy.__version__.split(".")[0]) < 2'
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "$check_runtime" >/dev/null 2>&1; then
    ok "the runtime, ONNX Runtime and numpy < 2 are in the venv"
else
    # numpy < 2: the system's OpenCV and TensorRT are built against numpy 1.x (JetPack 5 ships 1.17, 6 ships
    # 1.21); pip raises it within 1.x only if onnxruntime needs a newer one. No opencv extra: the system's
    # OpenCV, with GStreamer, must stay the one that imports.
    act "$VENV/bin/pip" install --upgrade "pip>=21.3"   # JetPack 5's pip 20 cannot install a pyproject.toml project
    act "$VENV/bin/pip" install -e "${REPO}[ort]" "numpy<2"
fi
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import pycuda.driver" >/dev/null 2>&1; then
    ok "pycuda is in the venv"
else
    act --show "PATH=/usr/local/cuda/bin:\$PATH CUDA_ROOT=/usr/local/cuda $VENV/bin/pip install pycuda" \
        env PATH="/usr/local/cuda/bin:$PATH" CUDA_ROOT=/usr/local/cuda \
        LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}" "$VENV/bin/pip" install pycuda
fi

# --- cameras: the video group --------------------------------------------------------------------------
user="${SUDO_USER:-${USER:-$(id -un)}}"
members="$(sed -n 's/^video:[^:]*:[^:]*://p' "${ROOT}etc/group" 2>/dev/null || true)"
if [[ "$user" == root ]] || [[ ",$members," == *",$user,"* ]]; then
    ok "$user may open cameras (video group)"
elif [[ $YES -eq 1 ]]; then
    act $SUDO usermod -aG video "$user"
    echo "note: log out and in again for the video group to take effect"
elif [[ -t 0 && $DRY -eq 0 ]] && read -r -p "add $user to the video group, for cameras? [y/N] " answer && [[ "$answer" == [yY]* ]]; then
    act $SUDO usermod -aG video "$user"
    echo "note: log out and in again for the video group to take effect"
else
    echo "note: $user is not in the video group, so cameras will not open: sudo usermod -aG video $user (or re-run with --yes)"
fi

# --- --max-perf: MAXN (by name, from nvpmodel.conf: mode 0 is not the fastest on every board), clocks ----
if [[ $MAX_PERF -eq 1 ]]; then
    maxn="$(sed -n 's/.*< *POWER_MODEL *ID=\([0-9]*\) *NAME=\(MAXN[^ >]*\) *>.*/\1 \2/p' "${ROOT}etc/nvpmodel.conf" 2>/dev/null | head -n 1)"
    current="$(sed -n 's/^pmode:0*\([0-9][0-9]*\).*/\1/p' "${ROOT}var/lib/nvpmodel/status" 2>/dev/null || true)"
    if [[ -z "$maxn" ]]; then
        echo "note: no MAXN mode in ${ROOT}etc/nvpmodel.conf; leaving the power mode as it is"
    elif [[ "${current:-x}" == "${maxn%% *}" ]]; then
        ok "power mode ${maxn#* } (mode ${maxn%% *})"
    else
        act $SUDO nvpmodel -m "${maxn%% *}"
    fi
    act $SUDO jetson_clocks   # clocks at their maximum until the next reboot
fi

# --- --swap SIZE ----------------------------------------------------------------------------------------
if [[ -n "$SWAP" ]]; then
    if grep -q "^/swapfile " "${ROOT}proc/swaps" 2>/dev/null; then
        ok "swap file /swapfile is on"
    else
        act $SUDO fallocate -l "$SWAP" /swapfile
        act $SUDO chmod 600 /swapfile
        act $SUDO mkswap /swapfile
        act $SUDO swapon /swapfile
        grep -q "^/swapfile " "${ROOT}etc/fstab" 2>/dev/null \
            || act $SUDO sh -c "echo '/swapfile none swap sw 0 0' >> /etc/fstab"
    fi
fi

# --- what is ready -----------------------------------------------------------------------------------------
if [[ $ACTIONS -eq 0 ]]; then
    echo "nothing to change: this Jetson is set up"
elif [[ $DRY -eq 1 ]]; then
    echo "dry run: $ACTIONS action(s) above, nothing changed"
fi
doctor=("$VENV/bin/python" -m runtime doctor)
if [[ $DRY -eq 1 ]]; then
    echo "would run: ${doctor[*]}"
else
    echo "+ ${doctor[*]}"
    (cd "$REPO" && "${doctor[@]}")
fi
