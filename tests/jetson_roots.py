"""Fake Jetson roots for jetson_setup.sh --root and `runtime doctor --root`: the files a board has, with what
real boards report (JetPack 5.1.2 on a Xavier NX, 6.2 on an Orin Nano Super, 7.0 on an AGX Thor):
/etc/nv_tegra_release, /proc/device-tree/model, dpkg's status with JetPack's package names and versions,
CUDA's version file, /etc/nvpmodel.conf in nvpmodel's format (PARAM sections, then one POWER_MODEL block per
mode, then PM_CONFIG DEFAULT), /var/lib/nvpmodel/status, /etc/group and cpufreq for jetson_clocks.
Also the resolved pip reports that .ci/jetson_resolve.sh caches, for the tests that read them."""

import hashlib
import json
import os

import pytest

from tests.conftest import ROOT

RESOLVE_CACHE = os.environ.get("JETSON_RESOLVE_CACHE", os.path.join(ROOT, ".cache", "jetson-resolve"))

RELEASES = {  # /etc/nv_tegra_release, board, dpkg versions (python3, python3-libnvinfer, libopencv-python), CUDA file
    "jp5": ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 "
            "UTC 2023\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
            "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\nINSTALL_TYPE=\n",
            "NVIDIA Jetson Xavier NX Developer Kit",
            {"python3": "3.8.2-0ubuntu2", "python3-libnvinfer": "8.5.2-1+cuda11.4",
             "libopencv-python": "4.5.4-8-g3e4c170df4", "nvidia-l4t-core": "35.4.1-20230801124926"},
            ("version.txt", "CUDA Version 11.4.315\n")),
    "jp6": ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 "
            "UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
            "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n",
            "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
            {"python3": "3.10.6-1~22.04", "python3-libnvinfer": "10.3.0.30-1+cuda12.5",
             "libopencv-python": "4.8.0-1-g6371ee1", "nvidia-l4t-core": "36.4.3-20250107174145"},
            ("version.json", '{\n   "cuda" : {\n      "name" : "CUDA SDK",\n      "version" : "12.6.68"\n   },\n'
                             '   "cuda_cudart" : {\n      "version" : "12.6.68"\n   }\n}\n')),
    "jp7": ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:00:00 "
            "UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
            "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n",
            "NVIDIA Jetson AGX Thor Developer Kit",
            {"python3": "3.12.3-0ubuntu2", "python3-libnvinfer": "10.13.3.9-1+cuda13.0",
             "python3-opencv": "4.6.0+dfsg-13.1ubuntu1", "nvidia-l4t-core": "38.2.0-20250821174705"},
            ("version.json", '{"cuda" : {"name" : "CUDA SDK", "version" : "13.0.48"}}\n')),
}

_PARAMS = """# nvpmodel.conf: PARAM sections name the knobs, each POWER_MODEL sets them
< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
CORE_1 /sys/devices/system/cpu/cpu1/online

< PARAM TYPE=CLOCK NAME=GPU >
FREQ_TABLE /sys/devices/17000000.gv11b/devfreq/17000000.gv11b/available_frequencies
MAX_FREQ /sys/devices/17000000.gv11b/devfreq/17000000.gv11b/max_freq
MIN_FREQ /sys/devices/17000000.gv11b/devfreq/17000000.gv11b/min_freq

"""


def nvpmodel_conf(modes, default):
    """modes: [(id, name)] -> nvpmodel.conf text in nvpmodel's format."""
    blocks = ["< POWER_MODEL ID=%d NAME=%s >\nCPU_ONLINE CORE_0 1\nCPU_ONLINE CORE_1 1\nGPU MAX_FREQ -1\n" % m
              for m in modes]
    return _PARAMS + "\n".join(blocks) + "\n< PM_CONFIG DEFAULT=%d >\n" % default


# Xavier NX on JetPack 5 (nvpmodel_t194_p3668.conf): no MAXN; the fastest is 8, MODE_20W_6CORE; mode 0 is 15 W on
# two cores; the default is 2.
NVPMODEL_XAVIER_NX = nvpmodel_conf([(0, "MODE_15W_2CORE"), (1, "MODE_15W_4CORE"), (2, "MODE_15W_6CORE"),
                                    (3, "MODE_10W_2CORE"), (4, "MODE_10W_4CORE"), (5, "MODE_10W_DESKTOP"),
                                    (6, "MODE_20W_2CORE"), (7, "MODE_20W_4CORE"), (8, "MODE_20W_6CORE")], 2)
# Orin Nano 8GB on JetPack 6.2 (Super): MAXN_SUPER is mode 2, the default 25 W mode 1
NVPMODEL_ORIN_NANO_SUPER = nvpmodel_conf([(0, "15W"), (1, "25W"), (2, "MAXN_SUPER"), (3, "7W")], 1)
# Orin Nano on JetPack 5: no MAXN, 15 W is the fastest
NVPMODEL_ORIN_NANO_JP5 = nvpmodel_conf([(0, "15W"), (1, "7W")], 0)
# AGX Orin 64GB: MAXN is mode 0
NVPMODEL_AGX_ORIN = nvpmodel_conf([(0, "MAXN"), (1, "MODE_15W"), (2, "MODE_30W"), (3, "MODE_50W")], 2)
# AGX Thor on JetPack 7
NVPMODEL_THOR = nvpmodel_conf([(0, "MAXN"), (1, "120W"), (2, "90W"), (3, "70W")], 0)
# Xavier AGX: MAXN is mode 0, MODE_30W_ALL among the rest
NVPMODEL_XAVIER_AGX = nvpmodel_conf([(0, "MAXN"), (1, "MODE_10W"), (2, "MODE_15W"), (3, "MODE_30W_ALL"),
                                     (4, "MODE_30W_6CORE"), (5, "MODE_30W_4CORE"), (6, "MODE_30W_2CORE")], 2)

ALL_PACKAGES = ["python3-libnvinfer", "python3-venv", "python3-pip", "python3-dev", "python3-gi",
                "gir1.2-gst-rtsp-server-1.0", "gir1.2-gst-plugins-base-1.0", "gstreamer1.0-tools",
                "gstreamer1.0-plugins-good", "gstreamer1.0-plugins-bad", "gstreamer1.0-plugins-ugly",
                "gstreamer1.0-libav", "build-essential"]


def fake_root(tmp_path, release="jp6", packages=(), group_members="", nvpmodel=None, pmode=None, nvcc=False,
              cuda_file=True, clocks=None):
    """A board's files under tmp_path/root-RELEASE. packages: dpkg packages installed besides python3 (those in
    RELEASES get their real versions). clocks: (scaling_min_freq, cpuinfo_max_freq) of cpu0, as jetson_clocks
    leaves them when they are equal."""
    root = tmp_path / ("root-" + release)
    line, model, versions, (cuda_name, cuda_text) = RELEASES[release]
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(line)
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\0")
    (root / "usr" / "local" / "cuda" / "bin").mkdir(parents=True)
    if cuda_file:
        (root / "usr" / "local" / "cuda" / cuda_name).write_text(cuda_text)
    if nvcc:
        (root / "usr" / "local" / "cuda" / "bin" / "nvcc").write_text("")
        (root / "usr" / "local" / "cuda" / "bin" / "nvcc").chmod(0o755)
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    installed = {"python3": versions["python3"]}
    installed.update({p: versions.get(p, "1.0-1") for p in packages})
    (root / "var" / "lib" / "dpkg" / "status").write_text("".join(
        "Package: %s\nStatus: install ok installed\nVersion: %s\nArchitecture: arm64\n\n" % kv
        for kv in installed.items()))
    (root / "etc" / "group").write_text("root:x:0:\nvideo:x:44:%s\n" % group_members)
    if nvpmodel:
        (root / "etc" / "nvpmodel.conf").write_text(nvpmodel)
    if pmode is not None:
        (root / "var" / "lib" / "nvpmodel").mkdir(parents=True)
        (root / "var" / "lib" / "nvpmodel" / "status").write_text("pmode:%04d fmode:quiet\n" % pmode)
    if clocks:
        cpufreq = root / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
        cpufreq.mkdir(parents=True)
        (cpufreq / "scaling_min_freq").write_text("%d\n" % clocks[0])
        (cpufreq / "cpuinfo_max_freq").write_text("%d\n" % clocks[1])
    return root


def fake_venv(tmp_path, home="/usr/bin"):
    """A venv whose python answers every check (the runtime, pycuda) and stands in for doctor."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = %s\ninclude-system-site-packages = true\n" % home)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\n[ \"$2\" = runtime ] && echo \"doctor (stand-in): $*\"\nexit 0\n")
    python.chmod(0o755)
    return venv


def resolved(jetpack, requirements_now):
    """The pip report .ci/jetson_resolve.sh made for JETPACK, as {name: version} plus the report; fails when the
    CI variable is set and the report is missing or stale, skips elsewhere, saying why."""
    report = os.path.join(RESOLVE_CACHE, "jp%d.json" % jetpack)
    stamp = os.path.join(RESOLVE_CACHE, "jp%d.requirements" % jetpack)
    why = None
    if not os.path.exists(report) or not os.path.exists(stamp):
        why = "no resolved report %s: run .ci/jetson_resolve.sh (needs the package registries)" % report
    else:
        with open(stamp) as f:
            recorded, key = f.read().rsplit("key ", 1)
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            key_now = hashlib.sha256(requirements_now.rstrip("\n").encode() + b"\n" + f.read()
                                     + b"layout 2\n").hexdigest()[:16]  # .ci/jetson_resolve.sh's cache layout
        if recorded.strip() != requirements_now.strip():
            why = ("%s resolved %r, but jetson_setup.sh asks for %r now: run .ci/jetson_resolve.sh"
                   % (report, recorded.strip(), requirements_now.strip()))
        elif key.strip() != key_now:
            why = "%s predates pyproject.toml's last change: run .ci/jetson_resolve.sh" % report
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with open(report) as f:
        data = json.load(f)
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in data["install"]}, data
