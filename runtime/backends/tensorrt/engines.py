"""TensorRT engine files of a bundle: the fingerprint that names them, where they live, atomic writes.

An engine is valid only for the GPU, board and TensorRT version that built it, and for one precision,
batch range, DLA core and model. All of that goes into its fingerprint, and the fingerprint into its
file name, so the runtime picks the one engine that fits this device or knows it must build one:

    BUNDLE/engines/fp16-b1-gpu-trt10.3.0-1f2e3d4c5b6a7980.engine   (+ .json with the fields, for people)
    BUNDLE/engines/fp16-b1-gpu-frame1280x720-trt10.3.0-....engine  (takes the camera's 1280x720 uint8 frame and
                                                                    preprocesses it itself: frame_input.py)

When the bundle is read-only, engines go to a per-user cache instead
($XDG_CACHE_HOME/edge-cnn-toolkit/engines/<model sha256 prefix>/). No TensorRT is imported here.
"""

from __future__ import annotations

import hashlib
import json
import os

from ...bundle import inside, write_atomic, write_json
from ...errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")
ENGINE_DIR = "engines"


class Device:
    """What makes an engine valid here: GPU name, compute capability, SM count, Jetson board model
    (every Orin reports "Orin" and 8.7, so the board tells them apart) and the TensorRT version."""

    def __init__(self, gpu_name, compute_capability, sm_count, trt_version, board=None):
        self.gpu_name = gpu_name
        self.compute_capability = tuple(int(v) for v in compute_capability)
        self.sm_count = int(sm_count)
        self.trt_version = str(trt_version)
        self.board = board

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def as_dict(self):
        return {"gpu": self.gpu_name, "compute_capability": "%d.%d" % self.compute_capability,
                "sm_count": self.sm_count, "board": self.board, "tensorrt": self.trt_version}


class EngineKey:
    """Everything an engine is built for; `fingerprint` hashes it and `filename` shows the main parts."""

    def __init__(self, device: Device, precision: str, max_batch: int, dla_core, model_sha256: str,
                 calibration=None, frame=None):
        if precision not in PRECISIONS:
            raise ValueError("precision %r is not one of %s" % (precision, ", ".join(PRECISIONS)))
        self.device, self.precision, self.max_batch = device, precision, int(max_batch)
        self.dla_core, self.model_sha256 = dla_core, model_sha256
        self.calibration = calibration  # INT8 by calibration: the calibration cache's sha256 (prefix)
        self.frame = None if frame is None else (int(frame[0]), int(frame[1]))  # (width, height): takes frames

    def as_dict(self):
        fields = self.device.as_dict()
        fields.update(precision=self.precision, max_batch=self.max_batch, dla_core=self.dla_core,
                      model_sha256=self.model_sha256)
        if self.calibration is not None:  # only INT8 engines by calibration have one (other names unchanged)
            fields["calibration"] = self.calibration
        if self.frame is not None:  # only engines that take the camera's frame have one (other names unchanged)
            fields["frame"] = "%dx%d" % self.frame
        return fields

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def filename(self) -> str:
        where = "gpu" if self.dla_core is None else "dla%d" % self.dla_core
        if self.frame is not None:
            where += "-frame%dx%d" % self.frame
        return "%s-b%d-%s-trt%s-%s.engine" % (self.precision, self.max_batch, where, self.device.trt_version,
                                              self.fingerprint)


def read(path: str, what: str = "engine") -> bytes:
    """A file of the engine cache (an engine, a timing or calibration cache), or one line saying why it cannot
    be read: most often one made with sudo before these were written with the umask's mode."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        owner = ""
        try:
            import pwd

            owner = ", owned by %s" % pwd.getpwuid(os.stat(path).st_uid).pw_name
        except (ImportError, KeyError, OSError):
            pass
        raise UserError("cannot read the %s %s (%s%s): make it readable (chmod a+r), or remove it to build it again"
                        % (what, path, exc.strerror or exc, owner)) from None


def _writable(folder: str) -> bool:
    probe = folder if os.path.isdir(folder) else os.path.dirname(folder)
    return os.access(probe, os.W_OK)


def user_cache_dir(model_sha256: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edge-cnn-toolkit", ENGINE_DIR, model_sha256[:16])


def own_dir(bundle_path: str) -> str:
    """The bundle's engines/ folder, refused in one line when it is a link out of the bundle: engines and caches
    are written and read there, and a bundle comes from elsewhere (a copy from the desktop)."""
    own = os.path.join(bundle_path, ENGINE_DIR)
    if os.path.islink(own) and not inside(bundle_path, own):
        raise UserError("%s is a link out of the bundle (to %s): engines are neither written nor read through it; "
                        "remove the link (engines then go to a folder of the bundle's own, or the user's cache)"
                        % (own, os.path.realpath(own)))
    if os.path.lexists(own) and not os.path.isdir(own):
        raise UserError("%s is not a folder (a file, or a link to nothing): engines are kept in a folder there; "
                        "remove it" % own)
    return own


def own_file(path: str) -> bool:
    """Whether path is a file of its folder's own: a file, not a link out of the folder (engines and caches in a
    bundle are read only so; a link out is taken as no file, and writing there replaces the link)."""
    return os.path.isfile(path) and inside(os.path.dirname(path) or ".", path)


def check_target(path: str, what: str) -> None:
    """Refuse, before a build starts, a place to write to that is not a file: a folder or a device there."""
    if os.path.lexists(path) and not os.path.islink(path) and not os.path.isfile(path):
        raise UserError("%s is in the way of the %s: it is not a file; remove it, or give another path"
                        % (path, what))


def search_dirs(bundle_path: str, model_sha256: str) -> list:
    """Where engines for this bundle may be: its own engines/ folder, then the per-user cache."""
    return [own_dir(bundle_path), user_cache_dir(model_sha256)]


def _engine_file(folder: str, name: str):
    """folder/name where it is a file there, not a link out of folder (a bundle's engines are its own)."""
    path = os.path.join(folder, name)
    return path if own_file(path) else None


def find(bundle_path: str, key: EngineKey, any_calibration: bool = False):
    """The path of the engine for exactly this key, or None. any_calibration: an INT8 engine calibrated on
    any data will do (the runtime, which is not told what calibrated it): the newest one, so that an engine
    built with `runtime engine --calib-data` after a first run's sample-calibrated one is the one used."""
    if any_calibration and key.precision == "int8":
        return _newest_calibrated(bundle_path, key)
    for folder in search_dirs(bundle_path, key.model_sha256):
        path = _engine_file(folder, key.filename)
        if path is not None:
            return path
    return None


def _newest_calibrated(bundle_path, key):
    want = key.as_dict()
    want.pop("calibration", None)
    found = []
    for path in listed(bundle_path, key.model_sha256):
        try:
            with open(path[:-len(".engine")] + ".json") as f:
                fields = json.load(f)
        except (OSError, ValueError, RecursionError):  # a damaged or crafted one: that engine is not used
            continue
        fields.pop("calibration", None)
        if fields == want:
            found.append((os.path.getmtime(path), path))
    return max(found)[1] if found else None


def write_dir(bundle_path: str, model_sha256: str, writable=_writable) -> str:
    """The bundle's engines/ folder where it can be written, else the per-user cache."""
    own = own_dir(bundle_path)
    return own if writable(own) else user_cache_dir(model_sha256)


def timing_cache_path(bundle_path: str, key: EngineKey, writable=_writable) -> str:
    """TensorRT's timing cache is per device and TensorRT version; it makes rebuilds much faster."""
    folder = write_dir(bundle_path, key.model_sha256, writable)
    return os.path.join(folder, "timing-trt%s-%s.cache" % (key.device.trt_version, key.device.fingerprint))


def calibration_cache_path(bundle_path: str, key: EngineKey, calibration: str, writable=_writable) -> str:
    """The INT8 calibration cache for this model, TensorRT version and calibration data (kept and reused)."""
    spec = ("%s|%s" % (key.model_sha256, calibration)).encode("utf-8", "surrogateescape")  # a name of any bytes
    tag = hashlib.sha256(spec).hexdigest()[:16]
    folder = write_dir(bundle_path, key.model_sha256, writable)
    return os.path.join(folder, "calibration-trt%s-%s.cache" % (key.device.trt_version, tag))


def listed(bundle_path: str, model_sha256: str) -> list:
    """Every engine file for this bundle, in its folder and in the user cache."""
    found = []
    for folder in search_dirs(bundle_path, model_sha256):
        if os.path.isdir(folder):
            paths = (_engine_file(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".engine"))
            found.extend(p for p in paths if p is not None)
    return found


def target(bundle_path: str, key: EngineKey, writable=_writable) -> str:
    """Where the engine for key is written."""
    return os.path.join(write_dir(bundle_path, key.model_sha256, writable), key.filename)


def save(bundle_path: str, key: EngineKey, plan: bytes, writable=_writable) -> str:
    """Store a serialized engine (and its fields as JSON beside it); returns the engine's path."""
    path = target(bundle_path, key, writable)
    write_atomic(path, bytes(plan))
    write_json(path[:-len(".engine")] + ".json", key.as_dict())
    return path
