"""What this machine is, read from the files a Jetson has, each function with root= so that tests (and
`python -m runtime doctor --root DIR`) can point it at a copy: the board's model and device-tree
compatible strings, L4T/JetPack, the power modes and the current one, and what the board's hardware has
(NVENC, a hardware MJPEG decoder, DLA cores). Everywhere else asks here; nothing here imports anything heavy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

JETPACK = {35: "5", 36: "6"}  # R38 and later: 7


def is_jetson(root="/") -> bool:
    return os.path.exists(os.path.join(root, "etc/nv_tegra_release"))


def board_model(root: str = "/") -> str:
    """The Jetson's model from /proc/device-tree/model (NUL-terminated there), or None off a Jetson."""
    try:
        with open(os.path.join(root, "proc/device-tree/model"), "rb") as f:
            return f.read().rstrip(b"\0").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def board_compatible(root: str = "/") -> tuple:
    """The device tree's compatible strings (/proc/device-tree/compatible, NUL-separated), most specific
    first: e.g. ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"); () off a Jetson."""
    try:
        with open(os.path.join(root, "proc/device-tree/compatible"), "rb") as f:
            raw = f.read()
    except OSError:
        return ()
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)


def l4t_release(root="/"):
    """(major, 'R.M.P') from /etc/nv_tegra_release ('# R36 (release), REVISION: 4.3, ...'), or None."""
    try:
        with open(os.path.join(root, "etc/nv_tegra_release")) as f:
            first = f.readline()
    except OSError:
        return None
    match = re.match(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    if not match:
        return None
    return int(match.group(1)), "%s.%s" % (match.group(1), match.group(2))


def jetpack_of(major):
    return JETPACK.get(major) or ("7" if major >= 38 else None)


def power_modes(root="/"):
    """[(id, name)] of the power modes in /etc/nvpmodel.conf; empty where there is none."""
    try:
        with open(os.path.join(root, "etc/nvpmodel.conf")) as f:
            text = f.read()
    except OSError:
        return []
    return [(int(i), name) for i, name in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+)\s*>", text)]


def mode_rating(name):
    """How fast a power mode is by its name: (2, 0, 0) for MAXN*, else (1, watts, cores) from names such as
    MODE_20W_6CORE, 15W or MODE_30W_ALL, (0, 0, 0) when the name says neither. jetson_setup.sh applies the
    same rule (fastest_mode there); tests/test_jetson_setup.py checks the two agree on real boards' confs."""
    upper = name.upper()
    if upper.startswith("MAXN"):
        return (2, 0, 0)
    watts = re.search(r"(\d+)W", upper)
    cores = re.search(r"(\d+)CORE", upper)
    if not watts:
        return (0, 0, 0)
    return (1, int(watts.group(1)), int(cores.group(1)) if cores else 0)


def fastest_mode(root="/"):
    """(id, name) of the fastest power mode: MAXN by name (mode 0 is not the fastest on every board), else the
    most watts, then the most cores (Xavier NX on JetPack 5 has no MAXN: its fastest is 8, MODE_20W_6CORE);
    the first of equals. None when there is no nvpmodel.conf or no name says."""
    rated = [(i, name) for i, name in power_modes(root) if mode_rating(name) > (0, 0, 0)]
    return max(rated, key=lambda mode: mode_rating(mode[1])) if rated else None  # max keeps the first of equals


def power_mode(root="/"):
    """The current nvpmodel mode's name: from /var/lib/nvpmodel/status ('pmode:0002 ...') and the conf, or
    from `nvpmodel -q`; None when unknown."""
    try:
        with open(os.path.join(root, "var/lib/nvpmodel/status")) as f:
            match = re.match(r"pmode:0*(\d+)", f.read())
        if match:
            return dict(power_modes(root)).get(int(match.group(1)), "mode %s" % match.group(1))
    except OSError:
        pass
    if root == "/" and shutil.which("nvpmodel"):
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True).stdout
        if "NV Power Mode:" in out:
            return out.split("NV Power Mode:")[-1].split("\n")[0].strip()
    return None


ORIN_NANO_MODULES = ("p3767-0003", "p3767-0004", "p3767-0005")  # Orin NX is p3767-0000/0001


def has_nvenc(board, compatible=()) -> bool:
    """Orin Nano has no hardware video encoder; every other Jetson does. Told by the module's number in the
    device tree's compatible strings (board_compatible), which no product rename changes; by the
    model's name only where the device tree says nothing."""
    if compatible:
        return not any(module in c for c in compatible for module in ORIN_NANO_MODULES)
    return not (board and "orin nano" in board.lower())


# DLA cores by module (device-tree compatible strings): NVIDIA's Jetson module data sheets. Xavier (tegra194, AGX
# and NX): 2; AGX Orin (p3701, every memory size): 2; Orin NX 16GB (p3767-0000): 2, 8GB (p3767-0001): 1; Orin Nano
# (p3767-0003/0004/0005): none. Others (Thor, an unknown module): not known here; TensorRT's builder says.
DLA_CORES = (("p3767-0000", 2), ("p3767-0001", 1), ("p3767-0003", 0), ("p3767-0004", 0), ("p3767-0005", 0),
             ("p3701", 2), ("tegra194", 2))


def dla_cores(compatible=()):
    """How many DLA cores the board's module has (DLA_CORES), or None where this does not know it."""
    for module, cores in DLA_CORES:
        if any(module in c for c in compatible):
            return cores
    return None


def dla_problem(placement, root="/"):
    """What is wrong with placing networks on DLA cores ({name: core}) on this board, in one line, or None (fine,
    or a board whose DLA cores are not known here: TensorRT's builder checks those)."""
    compatible = board_compatible(root)
    have = dla_cores(compatible)
    if have is None:
        return None
    board = board_model(root) or compatible[0]
    for name, core in placement.items():
        if core >= have:
            return ("--dla-core %s%d: %s has %s (`runtime doctor` lists the board's facts)"
                    % ("" if name is None else name + "=", core, board,
                       "no DLA: leave --dla-core out" if have == 0 else
                       "%d DLA core%s (%s)" % (have, "" if have == 1 else "s",
                                               "core 0" if have == 1 else "cores 0-%d" % (have - 1))))
    return None


def is_thor(board, compatible=()) -> bool:
    """Jetson Thor (Tegra264), which has no hardware MJPEG decoder."""
    return any("tegra264" in c for c in compatible) or bool(board and "thor" in board.lower())
