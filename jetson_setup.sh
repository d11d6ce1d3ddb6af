#!/usr/bin/env bash
# jetson_setup.sh: turn a Jetson (JetPack 5, 6 or 7) into a ready runtime, then say what is ready.
#
#   ./jetson_setup.sh [--max-perf] [--swap SIZE] [--venv DIR] [--yes] [--dry-run] [--root DIR]
#   ./jetson_setup.sh --print-requirements 5|6|7   (what pip installs on that JetPack; .ci/jetson_resolve.sh reads it)
#   ./jetson_setup.sh --service BUNDLE [--service-name NAME] [--venv DIR] [--dry-run] -- RUN_ARGS...
#   ./jetson_setup.sh --remove-service [--service-name NAME] [--dry-run]
#
# It detects the board and its L4T release (R35 = JetPack 5, R36 = JetPack 6, R38 and later = JetPack 7),
# reads the real TensorRT, CUDA and Python versions from the system, installs with apt what JetPack
# provides (TensorRT's Python bindings, GStreamer's plugins, an OpenCV with GStreamer where there is none;
# never a pip OpenCV over it), makes a venv with the system's /usr/bin/python3 and --system-site-packages (so
# it sees the system's tensorrt and cv2), installs the runtime into it with numpy below 2 (below 1.24 on
# JetPack 5) and without TensorFlow, builds pycuda against CUDA, checks the video group, and ends with `python -m runtime doctor`. Idempotent: each step is checked
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
PRINT_REQUIREMENTS=""
SYSTEM_PYTHON=/usr/bin/python3   # JetPack's tensorrt and cv2 are built for it; a pyenv or conda python3 cannot see them
EXTRAS="[ort,web,vehicle,test]"  # ONNX Runtime, the browser view, pyserial, pytest (make test-board); never the
                                 # opencv extra (the system's has GStreamer)
SERVICE_BUNDLE=""
SERVICE_NAME=""
REMOVE_SERVICE=0
RUN_ARGS=()
QUIET=()
UNIT_DIR=/etc/systemd/system

usage() {
    cat <<EOF
usage: $PROG [--max-perf] [--swap SIZE] [--venv DIR] [--yes] [--dry-run] [--root DIR]
       $PROG --print-requirements 5|6|7
       $PROG --service BUNDLE [--service-name NAME] [--venv DIR] [--dry-run] -- RUN_ARGS...
       $PROG --remove-service [--service-name NAME] [--dry-run]

Sets up this Jetson for the runtime: apt packages (TensorRT's Python bindings, GStreamer, OpenCV with
GStreamer), a venv made by /usr/bin/python3 with --system-site-packages and the runtime in it (numpy < 2;
< 1.24 on JetPack 5), pycuda built against CUDA, the video group; then runs python -m runtime doctor. Safe to
run again: done steps are skipped.

  --max-perf    switch to the fastest power mode (MAXN by name in /etc/nvpmodel.conf, else the most watts,
                then the most cores) and lock clocks (jetson_clocks)
  --swap SIZE   make and enable a swap file of SIZE (e.g. 8G); Nano-class boards need it to build engines
  --venv DIR    where the venv goes (default: $REPO/.venv)
  --yes         consent to adding you to the video group without asking
  --dry-run     print every action, change nothing
  --root DIR    read the system's files under DIR (for tests; changes are refused there)
  --print-requirements JETPACK
                print what pip installs into the venv on JetPack 5, 6 or 7 (Python version, the runtime's
                requirements, pycuda's) and exit; CI resolves them for aarch64 (.ci/jetson_resolve.sh)
  --service BUNDLE -- RUN_ARGS...
                install a systemd unit that runs \`python -m runtime run BUNDLE --headless --quiet RUN_ARGS\`
                (from the venv) at boot, as you: restarted 2 s after any failure (exit status 3: the camera
                lost for good; 2: a camera not ready yet; a crash; a loop hung for 30 s, which systemd's
                watchdog sees: the run says READY=1 and then WATCHDOG=1 every 15 s); stopped with SIGTERM
                (every output closed complete); its output in the journal (journalctl -u NAME -f), the
                summary and warnings only (--quiet, unless RUN_ARGS give it). RUN_ARGS need --source.
                Relative paths in RUN_ARGS are taken from the repository's folder. RUN_ARGS are read as run
                reads them: a unique prefix of an option is that option (--out, --so); an ambiguous one is refused.
                A udp:// control output beyond the loopback is signed: without --link-key FILE or
                --insecure-link in RUN_ARGS, a key is made once in /etc/edge-runtime/NAME.key (64 hex digits,
                mode 0600, yours; kept, never replaced, on the next --service) and passed as --link-key; copy
                it to the vehicle as printed. serial:// and loopback UDP need none.
                With --dry-run: print the unit, change nothing.
  --service-name NAME
                the unit's name (default runtime-BUNDLE'S-FOLDER-NAME)
  --remove-service
                stop, disable and remove the unit named by --service-name (its link key stays: the vehicle
                holds it too)
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
        --print-requirements)
            [[ $# -ge 2 ]] || die "--print-requirements needs a JetPack: 5, 6 or 7"; PRINT_REQUIREMENTS="$2"; shift ;;
        --service) [[ $# -ge 2 ]] || die "--service needs a bundle folder"; SERVICE_BUNDLE="$2"; shift ;;
        --service-name) [[ $# -ge 2 ]] || die "--service-name needs a name"; SERVICE_NAME="$2"; shift ;;
        --remove-service) REMOVE_SERVICE=1 ;;
        --) shift; RUN_ARGS=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see $PROG --help)" ;;
    esac
    shift
done
[[ -n "$VENV" ]] || die "--venv needs a folder"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"   # doctor and the service run from the repository, not from here

# --- what pip installs, per JetPack: the one place (--print-requirements shows it to CI) ---------------------
#   numpy: the system's OpenCV and TensorRT are built against numpy 1.x, so below 2 everywhere; on JetPack 5 also
#     below 1.24, where TensorRT 8.5's trt.nptype names np.bool (removed in 1.24), and pip would pick 1.24 for
#     numpy<2 (onnxruntime's aarch64 wheels for Python 3.8 need >= 1.21.6).
#   pycuda (an sdist, compiled here): 2026.1 says Python ~=3.8 but uses 3.9/3.10 syntax at import time
#     (pycuda.tools, gpuarray, autoinit fail on 3.8), so 2025.1.x on Python 3.8; CUDA 13 needs >= 2025.1.2.
#   Python and glibc are the JetPack's Ubuntu's (20.04, 22.04, 24.04): what pip's wheels must fit there.
requirements_of() {  # JETPACK -> sets PIP_PYTHON PIP_GLIBC NUMPY_PIN PYCUDA_PIN
    case "$1" in
        5) PIP_PYTHON=3.8;  PIP_GLIBC=2.31; NUMPY_PIN="numpy<1.24"; PYCUDA_PIN="pycuda>=2022.2,<2026" ;;
        6) PIP_PYTHON=3.10; PIP_GLIBC=2.35; NUMPY_PIN="numpy<2";    PYCUDA_PIN="pycuda>=2022.2" ;;
        7) PIP_PYTHON=3.12; PIP_GLIBC=2.39; NUMPY_PIN="numpy<2";    PYCUDA_PIN="pycuda>=2025.1.2" ;;
        *) return 1 ;;
    esac
}
if [[ -n "$PRINT_REQUIREMENTS" ]]; then
    requirements_of "$PRINT_REQUIREMENTS" || die "--print-requirements $PRINT_REQUIREMENTS: give a JetPack: 5, 6 or 7"
    echo "python $PIP_PYTHON"
    echo "glibc $PIP_GLIBC"
    echo "runtime .$EXTRAS $NUMPY_PIN"
    echo "pycuda $PYCUDA_PIN"
    exit 0
fi
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

# --- --service / --remove-service: the runtime as a systemd unit (before the Jetson checks: any systemd Linux) ----
systemd_quote() {  # one word for ExecStart=: quoted where needed; % and $ escaped (systemd specifiers, variables)
    local w="${1//%/%%}"
    w="${w//\$/\$\$}"
    if [[ "$w" =~ ^[A-Za-z0-9_./:@=,+-]+$ ]]; then printf '%s' "$w"
    else w="${w//\\/\\\\}"; printf '"%s"' "${w//\"/\\\"}"; fi
}
service_unit() {  # BUNDLE USER -> the unit's text
    local exec="" word
    for word in "$VENV/bin/python" -m runtime run "$1" --headless "${QUIET[@]}" "${RUN_ARGS[@]}"; do
        exec+="$(systemd_quote "$word") "
    done
    cat <<UNIT
# installed by jetson_setup.sh --service; remove with jetson_setup.sh --remove-service --service-name $SERVICE_NAME
[Unit]
Description=edge-AI runtime: $(systemd_quote "$(basename "$1")")
After=network-online.target nvargus-daemon.service
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=main
User=$2
SupplementaryGroups=video
WorkingDirectory=$(systemd_quote "$REPO")
Environment=PYTHONUNBUFFERED=1
# a watchdog's SIGABRT puts the stack of every thread in the journal: where the run hung
Environment=PYTHONFAULTHANDLER=1
ExecStart=${exec% }
# the run tells systemd READY=1 when its loop starts, then WATCHDOG=1 from the loop every 15 s: a loop that
# says nothing for 30 s has hung, and is killed and restarted. The start before READY=1 (the model loaded, the
# camera opened, a TensorRT engine built at the first run: minutes on a Nano, once) has TimeoutStartSec instead.
WatchdogSec=30
TimeoutStartSec=1h
# any failure restarts it: exit 3 (the camera lost for good), a crash, the watchdog, and exit 2 too, which is
# also what a camera, nvargus-daemon or serial adapter not ready yet at boot gives (a bad command repeats)
Restart=on-failure
RestartSec=2
# stopped with SIGTERM, the run closes every output complete and exits 143
KillSignal=SIGTERM
SuccessExitStatus=143
TimeoutStopSec=20
StandardOutput=journal
StandardError=journal
SyslogIdentifier=$SERVICE_NAME

[Install]
WantedBy=multi-user.target
UNIT
}
write_unit() { printf '%s\n' "$2" | $SUDO tee "$1" >/dev/null; }  # FILE TEXT
# The control link's key (runtime run --link-key): a udp:// output beyond the loopback signs every line with it.
KEY_DIR=/etc/edge-runtime
# sh -c MAKE_KEY FILE USER: FILE with 64 hex digits from /dev/urandom, made under umask 077, mode 0600, owned by
# USER; written whole into a temporary file first, then linked to FILE, which ln never does over an existing file.
# shellcheck disable=SC2016  # $1, $2, $k and $t are sh -c's own
MAKE_KEY='umask 077 && k=$(od -An -vtx1 -N32 /dev/urandom | tr -d " \n") && [ ${#k} -eq 64 ] && t=$(mktemp "$1.XXXXXX") || exit 1; printf "%s\n" "$k" >"$t" && chown "$2" "$t" && chmod 600 "$t" && ln "$t" "$1"; r=$?; rm -f "$t"; exit $r'
udp_remote() {  # an --output value -> "HOST PORT" when it is udp://HOST:PORT and HOST is not a loopback address
    local rest host port
    [[ "${1,,}" == udp://* ]] || return 0
    rest="${1#*://}"; rest="${rest%%[/?#]*}"; rest="${rest##*@}"
    if [[ "$rest" == \[* ]]; then host="${rest%%]*}"; host="${host#[}"; else host="${rest%:*}"; fi
    port="${rest##*:}"
    [[ "$port" =~ ^[0-9]+$ ]] || port=PORT
    host="${host,,}"
    [[ -z "$host" || "$host" == localhost || "$host" == ::1 || "$host" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && return 0
    echo "$host $port"
}
# run's long options, as `python -m runtime run` declares them (tests/test_jetson_setup.py holds this list to its
# parser). Its argparse reads any unique prefix of one as that option (--out, --outp=VALUE: --output; --ins:
# --insecure-link) and refuses an ambiguous one (--li: --link-key or --link-state), wherever the word stands before
# a --, even where a value is due; a value is never a word argparse reads as an option.
RUN_OPTIONS=(--help --debug --source --input --output --jsonl --jsonl-max-mb --jsonl-keep --masks --masks-every --priority
             --max-frames --display
             --no-display --headless --threshold --classes --track --backend --precision --dla-core --no-build
             --input-width --input-height --input-rate --input-loop --loop --input-flip --input-codec
             --reconnect-timeout --gst-preprocess --gpu-preprocess --read-timeout --web-token --web-host --realtime
             --quiet --max-image-pixels --watchdog-ms --heartbeat-ms --steering-limit --steering-rate --throttle
             --ros2-msg --wheelbase --speed --brake --camera-height --camera-pitch --link-key --link-state
             --insecure-link)
run_option() {  # WORD -> the run option argparse reads it as (NAME, NAME=VALUE, a prefix); nothing; or, when
    local name="${1%%=*}" option found=()  # the prefix is ambiguous, every option it could be, space-separated
    [[ "$1" != -- && "$name" == --* ]] || return 0  # (--=X: every option; a lone -- ends them, as the loop says)
    for option in "${RUN_OPTIONS[@]}"; do
        # an exact name wins (--input: not --input-width)
        if [[ "$option" == "$name" ]]; then echo "$option"; return 0; fi
        [[ "$option" != "$name"* ]] || found+=("$option")
    done
    echo "${found[*]}"
}
if [[ -n "$SERVICE_BUNDLE" || $REMOVE_SERVICE -eq 1 ]]; then
    [[ -z "$SERVICE_BUNDLE" || $REMOVE_SERVICE -eq 0 ]] || die "--service and --remove-service do not go together"
    if [[ -n "$SERVICE_BUNDLE" ]]; then
        [[ -f "$SERVICE_BUNDLE/manifest.json" ]] || die "--service $SERVICE_BUNDLE: not a bundle (no manifest.json there)"
        SERVICE_BUNDLE="$(cd "$SERVICE_BUNDLE" && pwd)"
        [[ -n "$SERVICE_NAME" ]] || SERVICE_NAME="runtime-$(basename "$SERVICE_BUNDLE" | tr -c 'A-Za-z0-9_.\n-' '-')"
        # RUN_ARGS as run reads them: its --source; a udp:// output beyond the loopback, which needs --link-key (or
        # --insecure-link): one key per unit, made once below.
        has_source=0
        remotes=()
        keyed=0
        quiet=0
        for ((i = 0; i < ${#RUN_ARGS[@]}; i++)); do
            word="${RUN_ARGS[i]}"
            [[ "$word" != -- ]] || break   # argparse reads no option after it (and run takes no word there)
            option="$(run_option "$word")"
            [[ "$option" != *" "* ]] \
                || die "--service: $word in RUN_ARGS is ambiguous (${option// /, }), so run would refuse it: spell the option out"
            case "$option" in
                --source | --input) has_source=1 ;;
                --output)
                    if [[ "$word" == *=* ]]; then value="${word#*=}"; else value="${RUN_ARGS[i + 1]:-}"; fi
                    remote="$(udp_remote "$value")"
                    [[ -z "$remote" ]] || remotes+=("$remote") ;;
                --link-key | --insecure-link) keyed=1 ;;
                --quiet) quiet=1 ;;
            esac
        done
        # the journal gets the summary and every warning, not a status line every 5 s for months
        [[ $quiet -eq 1 ]] || QUIET=(--quiet)
        [[ $has_source -eq 1 ]] || die "--service $SERVICE_BUNDLE needs the run's --source after --, as in: --service $SERVICE_BUNDLE -- --source csi://0 --output udp://192.168.1.20:5005"
        [[ -x "$VENV/bin/python" || $DRY -eq 1 ]] || die "no venv at $VENV: run $PROG first (or pass --venv DIR)"
        [[ "$VENV" == /* ]] || VENV="$PWD/$VENV"   # ExecStart needs an absolute path
    else
        [[ -n "$SERVICE_NAME" ]] || die "--remove-service needs --service-name NAME (the name --service printed; systemctl list-units 'runtime-*')"
    fi
    [[ -z "$SERVICE_NAME" || "$SERVICE_NAME" =~ ^[A-Za-z0-9_.@-]+$ ]] || die "--service-name $SERVICE_NAME: letters, digits, _ . @ - only"
    unit_file="$UNIT_DIR/$SERVICE_NAME.service"
    key_file="$KEY_DIR/$SERVICE_NAME.key"
    if [[ $REMOVE_SERVICE -eq 1 ]]; then
        if [[ ! -f "${ROOT%/}$unit_file" && $DRY -eq 0 ]]; then
            ok "no unit $unit_file: nothing to remove"
        else
            act $SUDO systemctl disable --now "$SERVICE_NAME.service"
            act $SUDO rm -f "$unit_file"
            act $SUDO systemctl daemon-reload
        fi
        [[ ! -f "${ROOT%/}$key_file" ]] \
            || echo "note: the link key $key_file stays (the vehicle holds the same key, and a new --service with this name uses it again); to delete it: ${SUDO:+$SUDO }rm $key_file"
        exit 0
    fi
    service_user="${SUDO_USER:-$(id -un)}"
    if [[ ${#remotes[@]} -gt 0 && $keyed -eq 0 ]]; then
        [[ -f "${ROOT%/}$key_file" || ! ( -e "${ROOT%/}$key_file" || -L "${ROOT%/}$key_file" ) ]] \
            || die "$key_file exists but is not a key file: move it away, or pass --link-key FILE after --"
        if [[ -f "${ROOT%/}$key_file" ]]; then
            ok "link key $key_file kept (the vehicle already holds it; never replaced)"
            if [[ "$(stat -c '%U %a' "${ROOT%/}$key_file" 2>/dev/null || true)" != "$service_user 600" ]]; then
                act $SUDO chown "$service_user" "$key_file"   # the run reads it as the unit's user, and only it may
                act $SUDO chmod 600 "$key_file"
            fi
        else
            [[ -d "${ROOT%/}$KEY_DIR" ]] || act $SUDO install -d -m 0755 -o root -g root "$KEY_DIR"
            act --show "${SUDO:+$SUDO }sh -c '$MAKE_KEY' sh $key_file $(printf '%q' "$service_user")" \
                $SUDO sh -c "$MAKE_KEY" sh "$key_file" "$service_user"
        fi
        RUN_ARGS+=(--link-key "$key_file")
    fi
    unit="$(service_unit "$SERVICE_BUNDLE" "$service_user")"
    if [[ $DRY -eq 1 ]]; then
        echo "would write $unit_file:"
        echo "$unit"
    fi
    act --show "${SUDO:+$SUDO }tee $unit_file" write_unit "$unit_file" "$unit"
    act $SUDO systemctl daemon-reload
    act $SUDO systemctl enable "$SERVICE_NAME.service"
    # started, or restarted with the new arguments; --no-block: a unit of Type=notify is started once the run says
    # READY=1, which a first run that builds its TensorRT engine says minutes later
    act $SUDO systemctl restart --no-block "$SERVICE_NAME.service"
    [[ $DRY -eq 1 ]] || echo "the runtime starts as $SERVICE_NAME (active once its loop runs; a first run builds its TensorRT engine first): journalctl -u $SERVICE_NAME -f (logs), systemctl status $SERVICE_NAME, $PROG --remove-service --service-name $SERVICE_NAME"
    if [[ ${#remotes[@]} -gt 0 && $keyed -eq 0 ]]; then
        echo "link key: $key_file signs every control line; the vehicle needs the same key, copied once over ssh (the key never goes over the control link itself):"
        for remote in $(printf '%s\n' "${remotes[@]}" | sort -u | tr ' ' ,); do
            echo "    cat $key_file | ssh ${remote%,*} 'umask 077; cat > link.key'"
            echo "    then there: python -m runtime vehicle --listen udp://:${remote#*,} --link-key link.key"
        done
    fi
    exit 0
fi

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
requirements_of "$jetpack"
# CUDA's compiler and headers for pycuda, JetPack's own versioned packages (not nvidia-cuda-dev, which pulls the
# whole toolkit and may resolve to Ubuntu's), named by the CUDA release: the system's, else the L4T release's.
if [[ -n "$cuda" ]]; then
    cuda_xy="${cuda%%.*}-$(cut -d. -f2 <<<"$cuda")"
else
    case "$major" in
        35) cuda_xy=11-4 ;;
        36) if [[ "$(cut -d. -f2 <<<"$l4t")" -ge 4 ]]; then cuda_xy=12-6; else cuda_xy=12-2; fi ;;
        *) cuda_xy=13-0 ;;
    esac
fi
cuda_home=/usr/local/cuda
packages=(python3-libnvinfer python3-venv python3-pip python3-dev python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0
          gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
          gstreamer1.0-libav build-essential)   # build-essential: g++, which pycuda's build needs
# JetPack's cv2 is in libopencv-python (nvidia-opencv is only a metapackage over it); JetPack 7 uses Ubuntu's.
if ! installed libopencv-python && ! installed python3-opencv; then
    if [[ $jetpack -ge 7 ]]; then packages+=(python3-opencv); else packages+=(libopencv-python); fi
fi
if [[ ! -x "${ROOT}usr/local/cuda/bin/nvcc" ]]; then
    packages+=("cuda-nvcc-$cuda_xy" "cuda-cudart-dev-$cuda_xy" "cuda-driver-dev-$cuda_xy")
    cuda_home="/usr/local/cuda-${cuda_xy/-/.}"
fi
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [[ ${#missing[@]} -eq 0 ]]; then
    ok "apt packages (TensorRT bindings, GStreamer, OpenCV with GStreamer, CUDA's compiler, g++) are installed"
else
    act $SUDO apt-get update
    act $SUDO apt-get install -y "${missing[@]}"
fi

# --- the venv and the runtime in it ------------------------------------------------------------------
if [[ -x "$VENV/bin/python" ]]; then
    grep -q "include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null \
        || die "$VENV exists but does not see the system's packages (tensorrt, cv2): remove it, or pass --venv DIR"
    home="$(sed -n 's/^home *= *//p' "$VENV/pyvenv.cfg" 2>/dev/null | head -n 1)"
    [[ "${home%/}" == "${SYSTEM_PYTHON%/*}" ]] \
        || die "$VENV was made by ${home:-an unknown}/python3, not the system's $SYSTEM_PYTHON, so it cannot see JetPack's tensorrt and cv2: remove it, or pass --venv DIR"
    ok "venv $VENV (made by $SYSTEM_PYTHON, with --system-site-packages)"
else
    act "$SYSTEM_PYTHON" -m venv --system-site-packages "$VENV"
fi
numpy_below="${NUMPY_PIN#numpy<}"
check_runtime="import numpy, onnxruntime, aiohttp, serial, pytest, hypothesis, runtime; v = tuple(int(x) for x in numpy.__version__.split('.')[:2]); assert v < tuple(int(x) for x in '$numpy_below'.split('.'))"
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "$check_runtime" >/dev/null 2>&1; then
    ok "the runtime, ONNX Runtime and $NUMPY_PIN are in the venv"
else
    # No opencv extra: the system's OpenCV, with GStreamer, must stay the one that imports.
    act "$VENV/bin/pip" install --upgrade "pip>=21.3"   # JetPack 5's pip 20 cannot install a pyproject.toml project
    act "$VENV/bin/pip" install -e "${REPO}${EXTRAS}" "$NUMPY_PIN"
fi
# pycuda.tools too: the pycuda that breaks on Python 3.8 loads pycuda.driver and fails there.
# Built from its source with CURAND off: pycuda enables CURAND by default (curand.h, -lcurand), which JetPack's
# CUDA packages above do not bring (libcurand-dev-X-Y, a large static library), and the runtime never uses it.
# pycuda reads that switch from a siteconf.py that its configure.py writes; pip alone cannot pass it.
build_pycuda() (  # a subshell: its trap removes the source folder however it ends
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "$VENV/bin/pip" download --quiet --no-deps --no-binary pycuda -d "$work" "$PYCUDA_PIN" || exit 1
    tar -xzf "$work"/pycuda-*.tar.gz -C "$work" || exit 1
    src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'pycuda-*' | head -n 1)"
    [[ -n "$src" ]] || exit 1
    (cd "$src" && "$VENV/bin/python" configure.py --cuda-root="$cuda_home" --no-cuda-enable-curand >/dev/null) || exit 1
    env PATH="$cuda_home/bin:$PATH" CUDA_ROOT="$cuda_home" LD_LIBRARY_PATH="$cuda_home/lib64:${LD_LIBRARY_PATH:-}" \
        "$VENV/bin/pip" install "$src"
)
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import pycuda.driver, pycuda.tools" >/dev/null 2>&1; then
    ok "pycuda is in the venv"
else
    act --show "build pycuda ($PYCUDA_PIN) without CURAND: $(printf '%q' "$VENV/bin/pip") download $(printf '%q' "$PYCUDA_PIN"), then in its source: python configure.py $(printf '%q' "--cuda-root=$cuda_home") --no-cuda-enable-curand; PATH=$(printf '%q' "$cuda_home/bin"):\$PATH $(printf '%q' "$VENV/bin/pip") install ." \
        build_pycuda
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

# --- --max-perf: the fastest power mode, then clocks -------------------------------------------------------
# The fastest mode by name, the rule of runtime/platform.py's fastest_mode (a test checks they agree): MAXN*, else
# the most watts, then the most cores (Xavier NX on JetPack 5 has no MAXN: mode 8, MODE_20W_6CORE); mode 0 is
# not the fastest on every board.
rating_greater() {  # "A B C" "D E F": is the first rating greater?
    local -a a b
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    local i
    for i in 0 1 2; do
        ((a[i] > b[i])) && return 0
        ((a[i] < b[i])) && return 1
    done
    return 1
}
fastest_mode() {  # CONF -> "ID NAME", or nothing when no name says
    local id name upper rating best="" best_rating="" cores
    while read -r id name; do
        upper="${name^^}"
        if [[ "$upper" == MAXN* ]]; then
            rating="2 0 0"
        elif [[ "$upper" =~ ([0-9]+)W ]]; then
            rating="1 ${BASH_REMATCH[1]}"
            cores=0
            [[ "$upper" =~ ([0-9]+)CORE ]] && cores="${BASH_REMATCH[1]}"
            rating="$rating $cores"
        else
            continue
        fi
        if [[ -z "$best" ]] || rating_greater "$rating" "$best_rating"; then best="$id $name"; best_rating="$rating"; fi
    done < <(sed -n 's/.*<[[:space:]]*POWER_MODEL[[:space:]][[:space:]]*ID=\([0-9][0-9]*\)[[:space:]][[:space:]]*NAME=\([^[:space:]>][^[:space:]>]*\).*/\1 \2/p' "$1")
    echo "$best"
}
# nvpmodel -m asks "DO YOU WANT TO REBOOT NOW?" when the mode changes what only a reboot applies (CPU cores on
# some boards): answer no, and say so; otherwise check the mode with nvpmodel -q.
switch_power_mode() {  # ID NAME
    local out rc=0 now
    out="$(echo no | $SUDO nvpmodel -m "$1" 2>&1)" || rc=$?
    [[ -z "$out" ]] || echo "$out"
    if grep -qi "reboot" <<<"$out"; then
        REBOOT_PENDING=1
        echo "note: power mode $2 (mode $1) takes effect after a reboot, which nvpmodel asked for and was not done: sudo reboot, then run $PROG --max-perf again to lock the clocks"
        return 0
    fi
    [[ $rc -eq 0 ]] || return "$rc"
    now="$($SUDO nvpmodel -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -n 1)"
    [[ "$now" == "$2" ]] || { echo "nvpmodel -q says the power mode is '${now:-?}', not $2" >&2; return 1; }
    ok "power mode $2 (mode $1), as nvpmodel -q says"
}
clocks_locked() {  # jetson_clocks pins each CPU's minimum frequency to its maximum until the next reboot
    local cpufreq="${ROOT}sys/devices/system/cpu/cpu0/cpufreq" low high
    low="$(cat "$cpufreq/scaling_min_freq" 2>/dev/null || true)"
    high="$(cat "$cpufreq/cpuinfo_max_freq" 2>/dev/null || true)"
    [[ -n "$low" && "$low" == "$high" ]]
}
REBOOT_PENDING=0
if [[ $MAX_PERF -eq 1 ]]; then
    conf="${ROOT}etc/nvpmodel.conf"
    mode_changed=0
    if [[ ! -f "$conf" ]]; then
        echo "note: no /etc/nvpmodel.conf here (nvpmodel is not set up on this board): leaving the power mode as it is"
    else
        fastest="$(fastest_mode "$conf")"
        current="$(sed -n 's/^pmode:0*\([0-9][0-9]*\).*/\1/p' "${ROOT}var/lib/nvpmodel/status" 2>/dev/null || true)"
        if [[ -z "$current" && "$ROOT" == / ]] && command -v nvpmodel >/dev/null; then
            current_name="$(nvpmodel -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -n 1)"
            [[ "$current_name" == "${fastest#* }" ]] && current="${fastest%% *}"
        fi
        if [[ -z "$fastest" ]]; then
            echo "note: no mode in /etc/nvpmodel.conf is MAXN or says its watts; leaving the power mode as it is"
        elif [[ "${current:-x}" == "${fastest%% *}" ]]; then
            ok "power mode ${fastest#* } (mode ${fastest%% *}), the fastest"
        else
            act --show "echo no | ${SUDO:+$SUDO }nvpmodel -m ${fastest%% *} && ${SUDO:+$SUDO }nvpmodel -q" \
                switch_power_mode "${fastest%% *}" "${fastest#* }"
            mode_changed=1
        fi
    fi
    if [[ $REBOOT_PENDING -eq 1 ]]; then
        echo "note: clocks not locked: the new power mode needs the reboot first"
    elif [[ $mode_changed -eq 0 ]] && clocks_locked; then
        ok "clocks are locked at their maximum (jetson_clocks has run since the last boot)"
    else
        act $SUDO jetson_clocks   # clocks at their maximum until the next reboot
    fi
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
    echo "would run: $(printf '%q ' "${doctor[@]}" | sed 's/ $//')"
else
    echo "+ $(printf '%q ' "${doctor[@]}" | sed 's/ $//')"
    (cd "$REPO" && "${doctor[@]}")
fi
