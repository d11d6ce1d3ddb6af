"""jetson_setup.sh and `python -m runtime doctor`, against fake Jetson roots (--root, tests/jetson_roots.py): the
files a Jetson has (/etc/nv_tegra_release, /proc/device-tree/model, dpkg's status, CUDA's version file,
nvpmodel's conf and status, /etc/group, cpufreq), one per JetPack release. The script never changes anything
under --root. What pip installs per JetPack is checked on the reports .ci/jetson_resolve.sh resolved for aarch64."""

import argparse
import json
import getpass
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys

import pytest

from runtime import platform
from tests.conftest import ROOT, cli
from tests.jetson_roots import (ALL_PACKAGES, NVPMODEL_AGX_ORIN, NVPMODEL_ORIN_NANO_JP5, NVPMODEL_ORIN_NANO_SUPER,
                                NVPMODEL_THOR, NVPMODEL_XAVIER_AGX, NVPMODEL_XAVIER_NX, RELEASES,
                                RESOLVE_CACHE, fake_root, fake_venv, resolved)

SCRIPT = os.path.join(ROOT, "jetson_setup.sh")


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
             "Python 3.8.2", "libopencv-python", "numpy\\<1.24", "pycuda\\>=2022.2\\,\\<2026", "11-4"]),
    ("jp6", ["L4T R36.4.3 = JetPack 6; TensorRT 10.3.0.30, CUDA 12.6.68, Python 3.10.6", "libopencv-python",
             "numpy\\<2", "pycuda\\>=2022.2", "12-6"]),
    ("jp7", ["NVIDIA Jetson AGX Thor Developer Kit, L4T R38.2.0 = JetPack 7; TensorRT 10.13.3.9, CUDA 13.0.48, "
             "Python 3.12.3", "python3-opencv", "numpy\\<2", "pycuda\\>=2025.1.2", "13-0"]),
])
def test_a_dry_run_prints_the_plan_for_each_jetpack_and_changes_nothing(tmp_path, release, expect):
    root = fake_root(tmp_path, release, packages=["python3-libnvinfer"])
    before = listing(root)
    proc = setup("--dry-run", "--root", root, "--venv", tmp_path / "venv")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    title, opencv, numpy_pin, pycuda_pin, cuda_xy = expect
    assert title in out
    apt = [ln for ln in out.splitlines() if ln.startswith("would run: apt-get install -y ")][0].split()
    assert opencv in apt and "nvidia-opencv" not in apt and "python3-libnvinfer" not in apt
    assert "gir1.2-gst-rtsp-server-1.0" in apt and "build-essential" in apt  # g++ for pycuda
    # no nvcc: JetPack's versioned CUDA packages for this release, never nvidia-cuda-dev (the whole toolkit)
    assert ["cuda-nvcc-" + cuda_xy, "cuda-cudart-dev-" + cuda_xy, "cuda-driver-dev-" + cuda_xy] == apt[-3:]
    assert "nvidia-cuda-dev" not in out
    assert not any("pip install" in ln and "opencv" in ln for ln in out.splitlines())  # never a pip OpenCV
    # the system's python3: a pyenv or conda python3 first on PATH would not see JetPack's tensorrt and cv2
    assert "would run: /usr/bin/python3 -m venv --system-site-packages %s" % (tmp_path / "venv") in out
    # the numpy pin is on pip's command line
    # pytest too (the test extra): README step 3, make test-board, runs in this venv
    assert "install -e %s\\[ort\\,web\\,vehicle\\,test\\] %s" % (ROOT, numpy_pin) in out
    cuda_home = "/usr/local/cuda-" + cuda_xy.replace("-", ".")
    # from its source with CURAND off: JetPack's CUDA packages above bring no libcurand-dev
    assert ("would run: build pycuda (%s) without CURAND: %s/bin/pip download %s, then in its source: python "
            "configure.py --cuda-root=%s --no-cuda-enable-curand; PATH=%s/bin:$PATH %s/bin/pip install ."
            % (pycuda_pin.replace("\\", ""), tmp_path / "venv", pycuda_pin, cuda_home, cuda_home,
               tmp_path / "venv")) in out
    assert "note: alice is not in the video group" in out and "--yes" in out
    assert "would run: %s -m runtime doctor" % (tmp_path / "venv" / "bin" / "python") in out
    assert r"install --upgrade pip\>=21.3" in out  # JetPack 5's pip 20 predates editable pyproject installs
    assert "dry run: 6 action(s) above, nothing changed" in out
    assert listing(root) == before and not (tmp_path / "venv").exists()


@pytest.mark.parametrize("line, cuda_xy", [
    ("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64", "12-2"),  # JetPack 6.0
    ("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64", "12-6"),  # JetPack 6.1
    ("# R35 (release), REVISION: 2.1, GCID: 32413640, BOARD: t186ref, EABI: aarch64", "11-4"),  # JetPack 5.1
    ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64", "13-0"),  # JetPack 7.0
])
def test_cuda_packages_follow_the_l4t_release_when_cuda_says_nothing(tmp_path, line, cuda_xy):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["libopencv-python"], cuda_file=False)
    (root / "etc" / "nv_tegra_release").write_text(line + "\n")
    proc = setup("--dry-run", "--root", root, "--venv", fake_venv(tmp_path))
    assert proc.returncode == 0, proc.stderr
    apt = [ln for ln in proc.stdout.splitlines() if ln.startswith("would run: apt-get install -y ")]
    assert apt == ["would run: apt-get install -y cuda-nvcc-%s cuda-cudart-dev-%s cuda-driver-dev-%s"
                   % (cuda_xy, cuda_xy, cuda_xy)]


def test_opencv_is_checked_by_the_package_that_has_cv2_not_the_metapackage(tmp_path):
    # nvidia-opencv installed, its libopencv-python removed: cv2 is gone, and libopencv-python brings it back
    root = fake_root(tmp_path, "jp5", packages=ALL_PACKAGES + ["nvidia-opencv"], nvcc=True)
    proc = setup("--dry-run", "--root", root, "--venv", fake_venv(tmp_path))
    assert "would run: apt-get install -y libopencv-python" in proc.stdout.splitlines()


def test_a_venv_made_by_another_python_is_refused(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["libopencv-python"], nvcc=True)
    venv = fake_venv(tmp_path, home="/home/alice/.pyenv/versions/3.10.13/bin")
    proc = setup("--dry-run", "--root", root, "--venv", venv)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "made by /home/alice/.pyenv/versions/3.10.13/bin/python3, not the system's /usr/bin/python3" in proc.stderr


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
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["libopencv-python"], group_members="bob,alice",
                     nvcc=True, nvpmodel=NVPMODEL_ORIN_NANO_SUPER, pmode=2, clocks=(1728000, 1728000))
    venv = fake_venv(tmp_path)
    for _ in range(2):  # not a dry run: it would refuse to change anything here
        proc = setup("--root", root, "--venv", venv, "--max-perf")
        assert proc.returncode == 0, proc.stderr
        assert "nothing to change: this Jetson is set up" in proc.stdout
        assert not any(ln.startswith(("+ apt", "would run", "+ python3")) for ln in proc.stdout.splitlines())
        assert "ok: power mode MAXN_SUPER (mode 2), the fastest" in proc.stdout
        assert "ok: clocks are locked at their maximum (jetson_clocks has run since the last boot)" in proc.stdout
        assert proc.stdout.count("ok: ") == 7
        assert "doctor (stand-in): -m runtime doctor" in proc.stdout


def test_changes_under_root_are_refused_and_consent_adds_the_video_group(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["libopencv-python"], nvcc=True)
    venv = fake_venv(tmp_path)
    proc = setup("--root", root, "--venv", venv, "--yes")
    assert proc.returncode == 2 and "refusing to change a system read under --root" in proc.stderr
    assert "usermod -aG video alice" in proc.stderr
    proc = setup("--root", root, "--venv", venv, "--yes", "--dry-run")
    assert proc.returncode == 0
    assert [ln for ln in proc.stdout.splitlines() if "usermod" in ln][0].endswith("usermod -aG video alice")


def test_max_perf_picks_the_fastest_mode_by_name_where_none_is_maxn(tmp_path):
    root = fake_root(tmp_path, "jp5", nvpmodel=NVPMODEL_XAVIER_NX, pmode=2, clocks=(1190400, 1907200))
    proc = setup("--dry-run", "--max-perf", "--root", root, "--venv", tmp_path / "v")
    assert proc.returncode == 0, proc.stderr
    # Xavier NX on JetPack 5: no MAXN; 20 W on six cores is mode 8 (mode 0 is 15 W on two). A reboot prompt is
    # answered no (and reported), then nvpmodel -q checks the mode; the new mode's clocks get locked.
    assert "would run: echo no | nvpmodel -m 8 && nvpmodel -q" in proc.stdout.splitlines()
    assert "would run: jetson_clocks" in proc.stdout.splitlines()
    root2 = fake_root(tmp_path / "b", "jp5", nvpmodel=NVPMODEL_XAVIER_NX, pmode=8, clocks=(1190400, 1907200))
    proc = setup("--dry-run", "--max-perf", "--root", root2, "--venv", tmp_path / "v")
    assert "ok: power mode MODE_20W_6CORE (mode 8), the fastest" in proc.stdout and "nvpmodel -m" not in proc.stdout
    assert "would run: jetson_clocks" in proc.stdout.splitlines()  # clocks not locked yet: min < max


def test_max_perf_without_nvpmodel_conf_says_so_and_goes_on(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=ALL_PACKAGES + ["libopencv-python"], nvcc=True,
                     clocks=(729600, 1510400))
    proc = setup("--dry-run", "--max-perf", "--swap", "8G", "--root", root, "--venv", fake_venv(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "note: no /etc/nvpmodel.conf here" in proc.stdout and "nvpmodel -m" not in proc.stdout
    assert "would run: jetson_clocks" in proc.stdout.splitlines() and "mkswap /swapfile" in proc.stdout


@pytest.mark.parametrize("conf, fastest", [
    (NVPMODEL_XAVIER_NX, (8, "MODE_20W_6CORE")), (NVPMODEL_ORIN_NANO_SUPER, (2, "MAXN_SUPER")),
    (NVPMODEL_ORIN_NANO_JP5, (0, "15W")), (NVPMODEL_AGX_ORIN, (0, "MAXN")), (NVPMODEL_THOR, (0, "MAXN")),
    (NVPMODEL_XAVIER_AGX, (0, "MAXN")),
])
def test_setup_and_doctor_agree_on_the_fastest_mode(tmp_path, conf, fastest):
    """jetson_setup.sh (bash) and runtime/platform.py (Python) apply one rule; here on each board's real modes."""
    root = fake_root(tmp_path, "jp6", nvpmodel=conf, pmode=99)
    assert platform.fastest_mode(str(root)) == fastest
    proc = setup("--dry-run", "--max-perf", "--root", root, "--venv", tmp_path / "v")
    assert "nvpmodel -m %d &&" % fastest[0] in proc.stdout, proc.stdout


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


def requirements(jetpack):
    proc = setup("--print-requirements", jetpack)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_print_requirements_is_the_one_place_and_bad_jetpacks_are_refused():
    jp5 = requirements(5).splitlines()
    assert jp5 == ["python 3.8", "glibc 2.31", "runtime .[ort,web,vehicle,test] numpy<1.24",
                   "pycuda pycuda>=2022.2,<2026"]
    assert "runtime .[ort,web,vehicle,test] numpy<2" in requirements(6) and "pycuda pycuda>=2025.1.2" in requirements(7)
    for bad in ("4", "five"):
        proc = setup("--print-requirements", bad)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "5, 6 or 7" in proc.stderr


def _version(text):
    return tuple(int(x) for x in text.split(".")[:3])


@pytest.mark.parametrize("jetpack, numpy_below", [(5, (1, 24)), (6, (2,)), (7, (2,))])
def test_what_pip_resolves_on_each_jetpack(jetpack, numpy_below):
    """pip's own resolution for the board (.ci/jetson_resolve.sh: aarch64, that JetPack's Python and glibc) of
    exactly what jetson_setup.sh asks for. numpy: below 1.24 on JetPack 5 (TensorRT 8.5's nptype), below 2
    everywhere (the system's OpenCV and TensorRT are built against numpy 1.x; JetPack 7's Ubuntu OpenCV too)."""
    versions, report = resolved(jetpack, requirements(jetpack))
    assert _version(versions["numpy"]) < numpy_below, versions
    assert "onnxruntime" in versions and "opencv-python" not in versions and "tensorflow" not in versions
    assert "pytest" in versions and "hypothesis" in versions  # make test-board runs there (README step 3)
    project = [i for i in report["install"] if i["metadata"]["name"] == "edge-cnn-toolkit"][0]["metadata"]
    # built by the newest setuptools here (the Python 3.8 install test builds it with 75.3): the license reads
    assert project.get("license") == "Apache-2.0" or project.get("license_expression") == "Apache-2.0", project


@pytest.mark.parametrize("jetpack, python", [(5, "3.8"), (6, "3.10"), (7, "3.12")])
def test_the_pycuda_each_jetpack_gets_runs_on_its_python(jetpack, python):
    """pycuda is an sdist, so pip resolves it on the board: .ci/jetson_resolve.sh fetched the one the pin selects.
    Every release says Python ~=3.8, but 2026.1 uses 3.9/3.10 syntax (vermin finds what its modules need)."""
    resolved(jetpack, requirements(jetpack))  # fails in CI, skips elsewhere, when the cache is missing or stale
    source = os.path.join(RESOLVE_CACHE, "jp%d-pycuda" % jetpack)
    with open(os.path.join(source, "VERSION")) as f:
        version = f.read().strip()
    if jetpack == 7:
        assert _version(version) >= (2025, 1, 2), version  # CUDA 13
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    proc = subprocess.run([vermin, "--no-tips", "--violations", "--eval-annotations",
                           "-t=%s-" % python, os.path.join(source, "pycuda")], capture_output=True, text=True)
    assert proc.returncode == 0, "pycuda %s needs a newer Python than %s:\n%s" % (version, python, proc.stdout)


@pytest.mark.parametrize("jetpack", [5, 6, 7])
def test_the_pycuda_each_jetpack_gets_builds_without_curand(jetpack, tmp_path):
    """jetson_setup.sh installs JetPack's CUDA compiler and headers but not libcurand-dev, and pycuda enables CURAND
    by default (curand.h, -lcurand): its configure.py, run as the script runs it on that pycuda's own source,
    must turn it off in the siteconf.py that its setup.py then reads."""
    resolved(jetpack, requirements(jetpack))
    source = tmp_path / "pycuda"
    shutil.copytree(os.path.join(RESOLVE_CACHE, "jp%d-pycuda" % jetpack), str(source))
    script = open(SCRIPT).read()
    configure = script[script.index('"$VENV/bin/python" configure.py') + len('"$VENV/bin/python" '):]
    configure = configure[:configure.index(" >/dev/null")].replace('"$cuda_home"', "/usr/local/cuda-12.6").split()
    assert configure == ["configure.py", "--cuda-root=/usr/local/cuda-12.6", "--no-cuda-enable-curand"]
    env = dict(os.environ, HOME=str(tmp_path))  # no ~/.aksetup-defaults.py of this machine's
    proc = subprocess.run([sys.executable] + configure, cwd=source, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    read = ("from aksetup_helper import get_config; from setup import get_config_schema; "
            "c = get_config(get_config_schema(), warn_about_no_config=False); "
            "print(c['CUDA_ENABLE_CURAND'], c['CUDA_ROOT'])")
    proc = subprocess.run([sys.executable, "-c", read], cwd=source, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "/usr/local/cuda-12.6"]


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
    (root / "proc" / "device-tree" / "compatible").write_bytes(b"nvidia,p3509-0000+p3668-0001\0nvidia,tegra194\0")
    (root / "dev").mkdir()
    (root / "dev" / "video0").write_text("")
    (root / "sys" / "class" / "video4linux" / "video0").mkdir(parents=True)
    (root / "sys" / "class" / "video4linux" / "video0" / "name").write_text("vi-output, imx219 9-0010\n")
    proc = cli("runtime", "doctor", "--root", root, fake_gpu="8.5.2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ("NVIDIA Jetson Xavier NX Developer Kit, L4T R35.4.1 = JetPack 5, 2 DLA cores, power mode MODE_15W_2CORE"
            in out)
    assert "the fastest is MODE_20W_6CORE, mode 8" in out and "jetson_setup.sh --max-perf" in out
    assert "TensorRT 8.5.2 (tensor API, precision by builder flags)" in out
    assert "FAKE Orin (nvgpu), compute 8.7" in out
    assert "/dev/video0 (CSI sensor: vi-output, imx219 9-0010)" in out
    assert "backends that will work: onnxruntime, tensorrt" in out

    (root / "etc" / "nv_tegra_release").write_text(RELEASES["jp5"][0].replace("R35", "R32"))
    proc = cli("runtime", "doctor", "--root", root)
    assert "too old for this runtime" in proc.stdout and "flash JetPack 5.1 or later" in proc.stdout


def _video_node(root, n, name, device, driver=None):
    """/dev/videoN and its sysfs entry as the kernel makes them: name, and device a link into /sys/devices."""
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev" / ("video%d" % n)).write_text("")
    node = root / "sys" / "class" / "video4linux" / ("video%d" % n)
    node.mkdir(parents=True)
    (node / "name").write_text(name + "\n")
    target = root / "sys" / "devices" / device
    target.mkdir(parents=True, exist_ok=True)
    (node / "device").symlink_to(os.path.relpath(str(target), str(node)))
    if driver:
        (root / "sys" / "bus" / driver).mkdir(parents=True, exist_ok=True)
        (target / "driver").symlink_to(os.path.relpath(str(root / "sys" / "bus" / driver), str(target)))


@pytest.mark.parametrize("cameras, works, fails", [
    # an Orin's CSI sensor alone: csi:// works, v4l2 does not (V4L2 gives its raw Bayer)
    ([("vi-output, imx219 9-0010", "platform/tegra-capture-vi", None)], ["csi://"], ["v4l2 (USB)"]),
    # a Nano's VI node (54080000.vi); the same
    ([("vi-output, imx477 7-001a", "platform/54080000.vi", None)], ["csi://"], ["v4l2 (USB)"]),
    # a USB camera whose name says IMX219 (Arducam's UVC boards): v4l2 works, csi:// does not
    ([("Arducam IMX219 USB Camera", "platform/3610000.xhci/usb1/1-2/1-2:1.0", "usb/drivers/uvcvideo")],
     ["v4l2 (USB)"], ["csi://"]),
    # one of each
    ([("vi-output, imx219 9-0010", "platform/tegra-capture-vi", None),
      ("HD Pro Webcam C920", "platform/3610000.xhci/usb1/1-3/1-3:1.0", "usb/drivers/uvcvideo")],
     ["csi://", "v4l2 (USB)"], []),
])
def test_doctor_tells_csi_sensors_from_usb_cameras(tmp_path, monkeypatch, cameras, works, fails):
    from runtime.commands import doctor

    root = fake_root(tmp_path, "jp6")
    for n, (name, device, driver) in enumerate(cameras):
        _video_node(root, n, name, device, driver)
    # this machine's OpenCV as a Jetson's (with GStreamer), so that only the cameras decide
    monkeypatch.setattr(doctor, "_opencv", lambda: (doctor.Check("opencv", doctor.OK, "GStreamer yes"), object()))
    checks, summary, _ = doctor.diagnose(str(root))
    working = [ln for ln in summary if ln.startswith("sources that will work: ")][0]
    for source in works:
        assert source in working, summary
    for source in fails:
        assert source not in working, summary
    cams = [c for c in checks if c.name == "cameras"][0].detail
    assert cams.count("CSI sensor") == sum(1 for c in cameras if c[0].startswith("vi-output")), cams
    assert cams.count("USB camera") == sum(1 for c in cameras if c[2]), cams


def test_doctor_reads_odd_camera_names_without_failing_or_blocking(tmp_path):
    """The kernel cuts a V4L2 name at 32 bytes, which can split a UTF-8 character; under --root a name may be a
    FIFO, which must not block doctor."""
    root = fake_root(tmp_path, "jp6")
    _video_node(root, 0, "x", "platform/3610000.xhci/usb1/1-2/1-2:1.0", "usb/drivers/uvcvideo")
    (root / "sys" / "class" / "video4linux" / "video0" / "name").write_bytes("Caméra USB 摄像".encode()[:-1] + b"\n")
    _video_node(root, 1, "y", "platform/tegra-capture-vi")
    fifo = root / "sys" / "class" / "video4linux" / "video1" / "name"
    fifo.unlink()
    os.mkfifo(str(fifo))
    proc = cli("runtime", "doctor", "--root", root, timeout=60)
    assert proc.returncode in (0, 1) and "internal error" not in proc.stderr, proc.stderr
    assert "/dev/video0 (USB camera: Caméra USB 摄\ufffd)" in proc.stdout, proc.stdout
    assert "/dev/video1 (CSI sensor)" in proc.stdout, proc.stdout  # its name a FIFO: not read, not waited for


def test_a_relative_venv_and_one_with_a_space_are_printed_so_they_paste(tmp_path):
    root = fake_root(tmp_path, "jp6", packages=["python3-libnvinfer"])
    proc = subprocess.run(["bash", SCRIPT, "--dry-run", "--root", str(root), "--venv", "rel venv"], cwd=str(tmp_path),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, env=dict(os.environ, USER="alice"),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    venv = str(tmp_path / "rel venv").replace(" ", "\\ ")  # absolute (doctor runs from the repository), quoted
    assert "would run: %s/bin/python -m runtime doctor" % venv in proc.stdout, proc.stdout
    assert "without CURAND: %s/bin/pip download" % venv in proc.stdout, proc.stdout


PILOTNET = os.path.join(ROOT, "tests", "runtime", "bundles", "pilotnet")  # checked in


KEY = "/etc/edge-runtime/runtime-pilotnet.key"


def _unit(out):
    return out[out.index("# installed by"):out.index("WantedBy=multi-user.target") + len("WantedBy=multi-user.target")]


def _exec_start(out):
    return [ln for ln in _unit(out).splitlines() if ln.startswith("ExecStart=")][0]


def _steps(out):
    """The would-run lines, without the sudo a run as another user than root puts before them."""
    return [ln[len("would run: "):].replace("sudo ", "", 1) if ln.startswith("would run: sudo ") else
            ln[len("would run: "):] for ln in out.splitlines() if ln.startswith("would run: ")]


def test_service_installs_a_unit_that_systemd_accepts(tmp_path):
    pilot_bundle = PILOTNET
    venv = os.path.join(ROOT, ".venv")
    root = fake_root(tmp_path, "jp6")  # no /etc/edge-runtime there: the key is made
    before = listing(root)
    proc = setup("--service", pilot_bundle, "--venv", venv, "--dry-run", "--root", root, "--",
                 "--source", "csi://0", "--output", "udp://192.168.1.20:5005", "--jsonl", "/var/log/run 1%.jsonl")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    unit = _unit(out)
    # quoted, % escaped for systemd; the vehicle's address is beyond the loopback, so the link is signed
    assert _exec_start(out) == ("ExecStart=%s/bin/python -m runtime run %s --headless --quiet --source csi://0 "
                                '--output udp://192.168.1.20:5005 --jsonl "/var/log/run 1%%%%.jsonl" --link-key %s'
                                % (venv, pilot_bundle, KEY))
    steps = _steps(out)
    assert steps[0] == "install -d -m 0755 -o root -g root /etc/edge-runtime"
    assert steps[1].startswith("sh -c 'umask 077 && k=$(od -An -vtx1 -N32 /dev/urandom | tr -d \" \\n\")")
    assert steps[1].endswith("' sh %s %s" % (KEY, getpass.getuser()))  # owned by the unit's user
    # how the vehicle gets the key: said once, over ssh, never over the link itself
    assert out.count("ssh 192.168.1.20 'umask 077; cat > link.key'") == 1
    assert "python -m runtime vehicle --listen udp://:5005 --link-key link.key" in out
    assert "never goes over the control link" in out
    assert listing(root) == before
    # systemd's watchdog (runtime/systemd.py says READY=1, then WATCHDOG=1 every 15 s); a watchdog kill is a failure
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "TimeoutStartSec=1h",
                 "Environment=PYTHONFAULTHANDLER=1", "Restart=on-failure", "RestartSec=2", "KillSignal=SIGTERM",
                 "SuccessExitStatus=143", "StandardOutput=journal", "SyslogIdentifier=runtime-pilotnet",
                 "SupplementaryGroups=video"):
        assert line in unit.splitlines()
    for step in ("tee /etc/systemd/system/runtime-pilotnet.service", "systemctl daemon-reload",
                 "systemctl enable runtime-pilotnet.service", "systemctl restart --no-block runtime-pilotnet.service"):
        assert "would run: " + step in out
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here (apt install systemd; .ci/run does)")
    (tmp_path / "runtime-pilotnet.service").write_text(unit + "\n")
    verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "runtime-pilotnet.service")],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and "runtime-pilotnet" not in verify.stderr, verify.stderr


@pytest.mark.parametrize("run_args, keyed", [
    (["--output=udp://192.168.1.20:5005"], True),
    (["--output", "udp://car.local:5005"], True),  # a name: the runtime resolves it, so it may be anywhere
    (["--output", "udp://[fd00::2]:5005"], True),
    (["--output", "udp://127.0.0.1:5005", "--output", "udp://10.0.0.7:5005"], True),
    (["--output", "udp://127.0.0.1:5005"], False),
    (["--output", "udp://127.4.5.6:5005"], False),
    (["--output=udp://localhost:5005"], False),
    (["--output", "udp://[::1]:5005"], False),
    (["--output", "udp://192.168.1.20:5005", "--insecure-link"], False),
    (["--output", "udp://192.168.1.20:5005", "--insecure"], False),  # argparse takes a unique prefix
    (["--output", "udp://192.168.1.20:5005", "--link-key", "keys/car.key"], False),
    (["--output=udp://192.168.1.20:5005", "--link-key=/home/alice/car.key"], False),
    (["--output=udp://192.168.1.20:5005", "--link-k", "keys/car.key"], False),  # --link: ambiguous, refused below
    (["--outp", "udp://192.168.1.20:5005"], True),  # argparse takes any prefix of --output from --o: see below
    (["--out=udp://192.168.1.20:5005"], True),
    (["--o", "udp://127.0.0.1:5005", "--outpu=udp://10.0.0.7:5005"], True),
    (["--outp", "udp://192.168.1.20:5005", "--ins"], False),
    (["--ou=udp://192.168.1.20:5005", "--link-k=keys/car.key"], False),
    (["--out", "udp://127.0.0.1:5005"], False),
    (["--output", "out.mp4", "--jsonl", "--out udp://192.168.1.20:5005"], False),  # one word, --jsonl's value
    (["--output", "out.mp4", "--", "--output", "udp://192.168.1.20:5005"], False),  # after --: no option (refused)
    (["--output", "serial:///dev/ttyACM0?baud=115200"], False),
    (["--output", "out.mp4", "--jsonl", "udp://192.168.1.20:5005"], False),  # not an --output
])
def test_only_a_udp_output_beyond_the_loopback_gets_a_key(tmp_path, run_args, keyed):
    root = fake_root(tmp_path, "jp6")
    proc = setup("--service", PILOTNET, "--venv", os.path.join(ROOT, ".venv"), "--dry-run", "--root", root, "--",
                 "--source", "csi://0", *run_args)
    assert proc.returncode == 0, proc.stderr
    key_steps = [step for step in _steps(proc.stdout) if "edge-runtime" in step]
    if keyed:
        assert len(key_steps) == 2 and _exec_start(proc.stdout).endswith(" --link-key " + KEY)
        assert proc.stdout.count("cat > link.key'") == 1
    else:
        assert key_steps == [] and "edge-runtime" not in proc.stdout and "link.key" not in proc.stdout
        assert _exec_start(proc.stdout).count("--link-key") == sum("--link-key" in a for a in run_args)
    assert not (root / "etc" / "edge-runtime").exists()


@pytest.mark.parametrize("run_args, added", [([], True), (["--quiet"], False), (["--qui"], False),
                                             (["--jsonl", "a.jsonl", "--jsonl-max-mb", "50"], True)])
def test_the_unit_runs_quiet_unless_told(tmp_path, run_args, added):
    """The 5 s status lines would fill the journal over months: the unit passes --quiet, once, unless RUN_ARGS
    have it (or a prefix of it argparse takes)."""
    proc = setup("--service", PILOTNET, "--venv", os.path.join(ROOT, ".venv"), "--dry-run", "--root",
                 fake_root(tmp_path, "jp6"), "--", "--source", "csi://0", *run_args)
    assert proc.returncode == 0, proc.stderr
    words = _exec_start(proc.stdout).split()
    assert words[words.index("--headless") + 1:] == (["--quiet"] if added else []) + ["--source", "csi://0"] + run_args


def _run_parser():
    """`python -m runtime run`'s own argparse parser."""
    from runtime.__main__ import build_parser

    commands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    return commands.choices["run"]


def _run_reads(argv, capsys):
    """What run's argparse makes of --source x ARGV: its namespace, or None where it refuses them."""
    try:
        return _run_parser().parse_args(["bundle", "--source", "x"] + argv)
    except SystemExit:
        capsys.readouterr()
        return None


OUTPUT_PREFIXES = ["--output"[:n] for n in range(3, len("--output") + 1)]  # --o, --ou, ... --output


def test_the_script_reads_run_args_with_runs_own_options(capsys):
    """jetson_setup.sh lists run's long options to read RUN_ARGS as its argparse does (a unique prefix is that
    option, an ambiguous one is refused): the list is run's, in its order. No other option of run starts with --o,
    so argparse takes every prefix of --output from --o on, as --outp VALUE and as --out=VALUE."""
    listed = re.search(r"^RUN_OPTIONS=\(([^)]*)\)", open(SCRIPT).read(), re.M).group(1).split()
    run = _run_parser()
    assert listed == [o for a in run._actions for o in a.option_strings if o.startswith("--")]
    assert [o for o in listed if o.startswith("--o")] == ["--output"]
    for prefix in OUTPUT_PREFIXES:
        for argv in ([prefix, "udp://192.168.1.20:5005"], [prefix + "=udp://192.168.1.20:5005"]):
            assert _run_reads(argv, capsys).output == ["udp://192.168.1.20:5005"], argv
    assert _run_reads(["--jsonl", "--out udp://192.168.1.20:5005"], capsys).output == []  # a value, not an option
    assert _run_reads(["--", "--output", "udp://192.168.1.20:5005"], capsys) is None


@pytest.mark.parametrize("prefix", OUTPUT_PREFIXES)
@pytest.mark.parametrize("joined", [False, True])
def test_every_prefix_of_output_argparse_takes_gets_a_key(tmp_path, prefix, joined):
    root = fake_root(tmp_path, "jp6")
    output = [prefix + "=udp://192.168.1.20:5005"] if joined else [prefix, "udp://192.168.1.20:5005"]
    proc = setup("--service", PILOTNET, "--venv", os.path.join(ROOT, ".venv"), "--dry-run", "--root", root, "--",
                 "--so", "csi://0", *output)  # --so: --source
    assert proc.returncode == 0, proc.stderr
    assert _exec_start(proc.stdout).endswith(" ".join(output) + " --link-key " + KEY)
    assert len([step for step in _steps(proc.stdout) if "edge-runtime" in step]) == 2
    assert proc.stdout.count("ssh 192.168.1.20 'umask 077; cat > link.key'") == 1


@pytest.mark.parametrize("run_args, word", [
    (["--output", "udp://192.168.1.20:5005", "--li", "keys/car.key"], "--li"),  # --link-key or --link-state
    (["--output=udp://192.168.1.20:5005", "--link", "keys/car.key"], "--link"),
    (["--output=udp://192.168.1.20:5005", "--link-=keys/car.key"], "--link-=keys/car.key"),
    (["--output", "udp://192.168.1.20:5005", "--in"], "--in"),  # --input-width, --insecure-link, ...
    (["--output", "udp://192.168.1.20:5005", "--jsonl", "--li"], "--li"),  # refused even where a value is due
    (["--output", "udp://192.168.1.20:5005", "--=x"], "--=x"),
])
def test_an_ambiguous_option_in_run_args_is_refused_as_run_refuses_it(tmp_path, capsys, run_args, word):
    assert _run_reads(run_args, capsys) is None  # run says: ambiguous option
    root = fake_root(tmp_path, "jp6")
    proc = setup("--service", PILOTNET, "--venv", os.path.join(ROOT, ".venv"), "--dry-run", "--root", root, "--",
                 "--source", "csi://0", *run_args)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "%s in RUN_ARGS is ambiguous" % word in proc.stderr and "spell the option out" in proc.stderr
    assert proc.stdout == "" and not (root / "etc" / "edge-runtime").exists()


def test_the_link_key_is_made_once_and_never_replaced(tmp_path):
    """The key command the script runs (as it prints it), run here on a file of the test's: 64 hex digits, mode
    0600, the user's; run again it keeps the key byte for byte. The script itself changes nothing under --root,
    so there it finds a key already made and keeps it: no key step, the same --link-key, and --remove-service
    leaves it too (the vehicle holds it)."""
    root = fake_root(tmp_path, "jp6")
    args = ["--service", PILOTNET, "--venv", os.path.join(ROOT, ".venv"), "--root", root, "--",
            "--source", "csi://0", "--output", "udp://192.168.1.20:5005"]
    proc = setup("--dry-run", *args)
    assert proc.returncode == 0, proc.stderr
    command = shlex.split([step for step in _steps(proc.stdout) if step.startswith("sh -c ")][0])
    assert command[-2:] == [KEY, getpass.getuser()]
    made = tmp_path / "made.key"
    command[-2] = str(made)
    assert subprocess.run(command, timeout=30).returncode == 0
    key = made.read_bytes()
    assert len(key.strip()) == 64 and all(c in b"0123456789abcdef" for c in key.strip()), key
    info = os.stat(str(made))
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    again = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert again.returncode != 0 and "File exists" in again.stderr  # ln never replaces a key
    assert made.read_bytes() == key
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith("made.key.")] == []  # no temporary file left

    (root / "etc" / "edge-runtime").mkdir()
    kept = root / "etc" / "edge-runtime" / "runtime-pilotnet.key"
    shutil.copy(str(made), str(kept))
    os.chmod(str(kept), 0o600)
    before = listing(root)
    for dry in (["--dry-run"], []):  # for real: it keeps the key, then refuses to write the unit under --root
        proc = setup(*dry + args)
        assert "ok: link key %s kept" % KEY in proc.stdout
        assert [step for step in _steps(proc.stdout) if "edge-runtime" in step] == []
        assert proc.stdout.count("cat > link.key'") == (1 if dry else 0)
        if dry:
            assert proc.returncode == 0 and _exec_start(proc.stdout).endswith(" --link-key " + KEY)
        else:
            assert proc.returncode == 2 and "refusing" in proc.stderr and "tee /etc/systemd" in proc.stderr
        assert kept.read_bytes() == key and listing(root) == before
    os.chmod(str(kept), 0o644)  # a key others may read is made the user's own again, never replaced
    assert [step for step in _steps(setup("--dry-run", *args).stdout) if "edge-runtime" in step] == [
        "chown %s %s" % (getpass.getuser(), KEY), "chmod 600 " + KEY]

    for dry in (["--dry-run"], []):
        proc = setup("--remove-service", "--service-name", "runtime-pilotnet", "--root", root, *dry)
        assert proc.returncode == 0, proc.stderr
        assert "note: the link key %s stays (the vehicle holds the same key" % KEY in proc.stdout
        assert "rm %s" % KEY in proc.stdout and not any("rm" in step and "edge-runtime" in step
                                                        for step in _steps(proc.stdout))
        assert kept.read_bytes() == key
    kept.unlink()
    kept.mkdir()  # not a key: refused, not replaced
    proc = setup("--dry-run", *args)
    assert proc.returncode == 2 and "exists but is not a key file" in proc.stderr, proc.stderr


def test_bad_service_options_and_its_removal(tmp_path):
    pilot_bundle = PILOTNET
    root = fake_root(tmp_path, "jp6")
    for args, message in ((["--service", pilot_bundle, "--dry-run", "--", "--output", "udp://h:1"], "needs the run's "
                                                                                                     "--source"),
                          (["--service", tmp_path, "--dry-run", "--", "--source", "csi://0"], "not a bundle"),
                          (["--service", pilot_bundle, "--remove-service", "--dry-run", "--", "--source", "x"],
                           "do not go together"),
                          (["--remove-service", "--service-name", "a b"], "letters, digits"),
                          (["--remove-service", "--dry-run"], "needs --service-name"),
                          (["--service", pilot_bundle, "--root", root, "--", "--source", "csi://0"], "refusing")):
        proc = setup(*args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, args
    proc = setup("--remove-service", "--service-name", "runtime-pilotnet", "--dry-run")
    assert proc.returncode == 0
    assert [ln for ln in proc.stdout.splitlines() if ln.startswith("would run")] == [
        "would run: systemctl disable --now runtime-pilotnet.service",
        "would run: rm -f /etc/systemd/system/runtime-pilotnet.service", "would run: systemctl daemon-reload"]
    proc = setup("--remove-service", "--service-name", "runtime-pilotnet", "--root", root)
    assert proc.returncode == 0 and "nothing to remove" in proc.stdout
