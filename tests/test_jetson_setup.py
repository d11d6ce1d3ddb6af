"""jetson_setup.sh and `python -m runtime doctor`, against fake Jetson roots (--root): the files a Jetson
has (/etc/nv_tegra_release, /proc/device-tree/model, dpkg's status, CUDA's version file, nvpmodel's conf
and status, /etc/group), one per JetPack release. The script never changes anything under --root."""

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, cli

SCRIPT = os.path.join(ROOT, "jetson_setup.sh")
ALL_PACKAGES = ["python3-libnvinfer", "python3-venv", "python3-pip", "python3-dev", "python3-gi",
                "gir1.2-gst-rtsp-server-1.0", "gstreamer1.0-tools", "gstreamer1.0-plugins-good",
                "gstreamer1.0-plugins-bad", "gstreamer1.0-plugins-ugly", "gstreamer1.0-libav"]
RELEASES = {  # L4T line, board, (python3, python3-libnvinfer versions), CUDA file
    "jp5": ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 "
            "UTC 2023", "NVIDIA Jetson Xavier NX Developer Kit", ("3.8.2-0ubuntu2", "8.5.2-1+cuda11.4"),
            ("version.txt", "CUDA Version 11.4.315\n")),
    "jp6": ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 "
            "UTC 2025", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
            ("3.10.6-1~22.04", "10.3.0.30-1+cuda12.5"),
            ("version.json", '{\n   "cuda" : {\n      "name" : "CUDA SDK",\n      "version" : "12.6.68"\n   },\n'
                             '   "cuda_cudart" : {\n      "version" : "12.6.68"\n   }\n}\n')),
    "jp7": ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:00:00 "
            "UTC 2025", "NVIDIA Jetson AGX Thor Developer Kit", ("3.12.3-0ubuntu2", "10.13.3.9-1+cuda13.0"),
            ("version.json", '{"cuda" : {"name" : "CUDA SDK", "version" : "13.0.48"}}\n')),
}
NVPMODEL_XAVIER_NX = """< POWER_MODEL ID=0 NAME=MODE_15W_2CORE >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=MODE_15W_4CORE >
< POWER_MODEL ID=8 NAME=MAXN >
< PM_CONFIG DEFAULT=2 >
"""


def fake_root(tmp_path, release="jp6", packages=(), group_members="", nvpmodel=None, pmode=None):
    root = tmp_path / ("root-" + release)
    line, model, (py, trt), (cuda_name, cuda_text) = RELEASES[release]
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(line + "\n")
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\0")
    (root / "usr" / "local" / "cuda" / "bin").mkdir(parents=True)
    (root / "usr" / "local" / "cuda" / cuda_name).write_text(cuda_text)
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    versions = dict({p: "1.0-1" for p in packages}, python3=py, **({"python3-libnvinfer": trt}
                                                                   if "python3-libnvinfer" in packages else {}))
    (root / "var" / "lib" / "dpkg" / "status").write_text("".join(
        "Package: %s\nStatus: install ok installed\nVersion: %s\nArchitecture: arm64\n\n" % kv
        for kv in versions.items()))
    (root / "etc" / "group").write_text("root:x:0:\nvideo:x:44:%s\n" % group_members)
    if nvpmodel:
        (root / "etc" / "nvpmodel.conf").write_text(nvpmodel)
    if pmode is not None:
        (root / "var" / "lib" / "nvpmodel").mkdir(parents=True)
        (root / "var" / "lib" / "nvpmodel" / "status").write_text("pmode:%04d fmode:quiet\n" % pmode)
    return root


def fake_venv(tmp_path):
    """A venv whose python answers every check (the runtime, pycuda) and stands in for doctor."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\n[ \"$2\" = runtime ] && echo \"doctor (stand-in): $*\"\nexit 0\n")
    python.chmod(0o755)
    return venv


def setup(*args, env=None):
    full_env = dict(os.environ, USER="alice", **(env or {}))
    full_env.pop("SUDO_USER", None)
    return subprocess.run(["bash", SCRIPT] + [str(a) for a in args], capture_output=True, text=True, env=full_env,
                          timeout=120, stdin=subprocess.DEVNULL)


def listing(folder):
    return sorted((p, os.path.getmtime(os.path.join(d, p))) for d, _, files in os.walk(folder) for p in files)


def test_shellcheck_is_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("no shellcheck here (apt install shellcheck; .ci/run does)")
    proc = subprocess.run(["shellcheck", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("release, expect", [
    ("jp5", ["NVIDIA Jetson Xavier NX Developer Kit, L4T R35.4.1 = JetPack 5; TensorRT 8.5.2, CUDA 11.4.315, "
             "Python 3.8.2", "nvidia-opencv"]),
    ("jp6", ["L4T R36.4.3 = JetPack 6; TensorRT 10.3.0.30, CUDA 12.6.68, Python 3.10.6", "nvidia-opencv"]),
    ("jp7", ["NVIDIA Jetson AGX Thor Developer Kit, L4T R38.2.0 = JetPack 7; TensorRT 10.13.3.9, CUDA 13.0.48, "
             "Python 3.12.3", "python3-opencv"]),
])
def test_a_dry_run_prints_the_plan_for_each_jetpack_and_changes_nothing(tmp_path, release, expect):
    root = fake_root(tmp_path, release, packages=["python3-libnvinfer"])
    before = listing(root)
    proc = setup("--dry-run", "--root", root, "--venv", tmp_path / "venv")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert expect[0] in out
    apt = [ln for ln in out.splitlines() if ln.startswith("would run: apt-get install -y ")][0]
    assert expect[1] in apt and "python3-libnvinfer" not in apt and "gir1.2-gst-rtsp-server-1.0" in apt
    assert "opencv-python" not in out  # never a pip OpenCV over the system's
    assert "would run: python3 -m venv --system-site-packages %s" % (tmp_path / "venv") in out
    assert "install -e %s\\[ort\\] numpy\\<2" % ROOT in out
    assert "PATH=/usr/local/cuda/bin:$PATH CUDA_ROOT=/usr/local/cuda" in out and "install pycuda" in out
    assert "note: alice is not in the video group" in out and "--yes" in out
    assert "would run: %s -m runtime doctor" % (tmp_path / "venv" / "bin" / "python") in out
    assert r"install --upgrade pip\>=21.3" in out  # JetPack 5's pip 20 predates editable pyproject installs
    assert "dry run: 6 action(s) above, nothing changed" in out
    assert listing(root) == before and not (tmp_path / "venv").exists()


@pytest.mark.parametrize("line, message", [
    ("# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64", "JetPack 4 or older"),
    ("# R37 (release), REVISION: 0.1", "not a release this script knows"),
    ("garbage", "cannot read the L4T release"),
])
def test_unsupported_releases_are_refused_even_without_dry_run(tmp_path, line, message):
    root = fake_root(tmp_path)
    (root / "etc" / "nv_tegra_release").write_text(line + "\n")
    proc = setup("--root", root)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_a_machine_that_is_not_a_jetson_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["--root", tmp_path / "empty"], []):  # a fake root, and this very machine
        proc = setup(*args)
        assert proc.returncode == 2 and "not a Jetson" in proc.stderr and proc.stdout == ""


def test_a_second_run_on_a_set_up_jetson_changes_nothing(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["nvidia-opencv"], group_members="bob,alice")
    (root / "usr" / "local" / "cuda" / "bin" / "nvcc").write_text("")
    (root / "usr" / "local" / "cuda" / "bin" / "nvcc").chmod(0o755)
    venv = fake_venv(tmp_path)
    for _ in range(2):
        proc = setup("--root", root, "--venv", venv)  # not a dry run: it would refuse to change anything here
        assert proc.returncode == 0, proc.stderr
        assert "nothing to change: this Jetson is set up" in proc.stdout
        assert not any(ln.startswith(("+ apt", "would run", "+ python3")) for ln in proc.stdout.splitlines())
        assert proc.stdout.count("ok: ") == 5
        assert "doctor (stand-in): -m runtime doctor" in proc.stdout


def test_changes_under_root_are_refused_and_consent_adds_the_video_group(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["nvidia-opencv"])
    (root / "usr" / "local" / "cuda" / "bin" / "nvcc").write_text("")
    (root / "usr" / "local" / "cuda" / "bin" / "nvcc").chmod(0o755)
    venv = fake_venv(tmp_path)
    proc = setup("--root", root, "--venv", venv, "--yes")
    assert proc.returncode == 2 and "refusing to change a system read under --root" in proc.stderr
    assert "usermod -aG video alice" in proc.stderr
    proc = setup("--root", root, "--venv", venv, "--yes", "--dry-run")
    assert proc.returncode == 0
    assert [ln for ln in proc.stdout.splitlines() if "usermod" in ln][0].endswith("usermod -aG video alice")


def test_max_perf_finds_maxn_by_name_not_mode_0(tmp_path):
    root = fake_root(tmp_path, "jp5", nvpmodel=NVPMODEL_XAVIER_NX, pmode=2)
    proc = setup("--dry-run", "--max-perf", "--root", root, "--venv", tmp_path / "v")
    assert proc.returncode == 0, proc.stderr
    assert "nvpmodel -m 8" in proc.stdout and "jetson_clocks" in proc.stdout  # on Xavier NX, mode 0 is 15 W
    root2 = fake_root(tmp_path / "b", "jp5", nvpmodel=NVPMODEL_XAVIER_NX, pmode=8)
    proc = setup("--dry-run", "--max-perf", "--root", root2, "--venv", tmp_path / "v")
    assert "ok: power mode MAXN (mode 8)" in proc.stdout and "nvpmodel -m" not in proc.stdout


def test_swap_and_bad_options(tmp_path):
    root = fake_root(tmp_path, "jp6")
    proc = setup("--dry-run", "--swap", "8G", "--root", root, "--venv", tmp_path / "v")
    assert proc.returncode == 0
    for step in ("fallocate -l 8G /swapfile", "chmod 600 /swapfile", "mkswap /swapfile", "swapon /swapfile",
                 "/etc/fstab"):
        assert step in proc.stdout
    for args, message in ((["--swap", "lots"], "--swap lots: give a size"), (["--frobnicate"], "unknown option"),
                          (["--root", tmp_path / "nowhere"], "is not a folder")):
        proc = setup(*args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = setup("--help")
    assert proc.returncode == 0 and "--max-perf" in proc.stdout and "--dry-run" in proc.stdout


def test_doctor_here_says_truthfully_no_tensorrt_and_no_gpu():
    proc = cli("runtime", "doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["tensorrt"]["verdict"] == "missing" and "pip install tensorrt" in checks["tensorrt"]["fix"]
    assert checks["pycuda/gpu"]["verdict"] == "missing" and "nvcc" in checks["pycuda/gpu"]["fix"]
    assert checks["jetson"]["detail"] == "not a Jetson"
    assert checks["onnxruntime"]["verdict"] == "ok" and report["runnable"]
    assert "backends that will work: onnxruntime" in report["summary"]
    proc = cli("runtime", "doctor")
    assert proc.returncode == 0 and "the runtime can run here" in proc.stdout


def test_doctor_on_a_jetson_with_tensorrt_and_a_camera(tmp_path):
    root = fake_root(tmp_path, "jp5", nvpmodel=NVPMODEL_XAVIER_NX, pmode=0)
    (root / "dev").mkdir()
    (root / "dev" / "video0").write_text("")
    (root / "sys" / "class" / "video4linux" / "video0").mkdir(parents=True)
    (root / "sys" / "class" / "video4linux" / "video0" / "name").write_text("vi-output, imx219 9-0010\n")
    proc = cli("runtime", "doctor", "--root", root, fake_gpu="8.5.2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "NVIDIA Jetson Xavier NX Developer Kit, L4T R35.4.1 = JetPack 5, power mode MODE_15W_2CORE" in out
    assert "the fastest is MAXN, mode 8" in out and "jetson_setup.sh --max-perf" in out
    assert "TensorRT 8.5.2 (tensor API, precision by builder flags)" in out
    assert "FAKE Orin (nvgpu), compute 8.7" in out
    assert "/dev/video0 (vi-output, imx219 9-0010)" in out
    assert "backends that will work: onnxruntime, tensorrt" in out

    (root / "etc" / "nv_tegra_release").write_text(RELEASES["jp5"][0].replace("R35", "R32") + "\n")
    proc = cli("runtime", "doctor", "--root", root)
    assert "too old for this runtime" in proc.stdout and "flash JetPack 5.1 or later" in proc.stdout
