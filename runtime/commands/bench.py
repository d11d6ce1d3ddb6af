"""python -m runtime bench BUNDLE: how fast this machine runs a bundle, end to end, as the runtime runs it.

Warm-up, then N frames through the same threaded pipeline as `run`. Without --source it cycles the
bundle's own samples held in memory at the size whose crop is the network's input (so no resize either),
which isolates the pipeline from any decoder and from resizing (as many samples as fit the image budget
together at that size: they are cycled, so fewer cost nothing). With --frame-size WxH the samples are held
at a camera's size instead (1280x720: what a decoder hands over), so preprocessing shows at its real cost
with no decoder in the way. Reports (and --json
writes): backend, frames, fps, latency_ms {p50, p95, max}, stages_ms (mean per stage; capture includes
waiting for the source), slowest_stage_fps (1000 / the largest stage mean), bare_fps (the backend alone on a
ready input: the limit), paths (where each preprocessing step ran: cpu, gstreamer or gpu),
peak_rss_mb, rss_growth_mb (resident memory after the measured frames minus before
them: flat means no per-frame allocation growth), startup_s (process start to first result). On a Jetson also the power
mode, GPU load and board power from tegrastats, and trtexec's rate on the same engine where it exists.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

from .. import images as image_files
from .. import platform
from ..backends import NAMES as BACKENDS
from ..bundle import bundle_samples, write_json
from ..cli import add_max_image_pixels, positive_int
from ..errors import UserError
from ..model import Model
from ..pipeline import FILE_QUEUE, run
from ..preprocess import GPU_MODES, GST_MODES
from ..sources import Source, open_source

TRTEXEC = ("trtexec", "/usr/src/tensorrt/bin/trtexec")


def process_start_epoch():
    """When this process started (Linux: /proc/self/stat's starttime after boot, plus /proc/stat's btime)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            btime = int(next(line.split()[1] for line in f if line.startswith("btime")))
        return btime + int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def rss_mb(field="VmRSS"):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb():
    """This process's peak resident memory: VmHWM (getrusage's ru_maxrss survives exec, so a process started
    by a big one would report its parent's peak)."""
    peak = rss_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _held(images, size, interpolation):
    """The frames resized to size (width, height), as many as fit the image budget together (they are cycled
    anyway, so fewer cost nothing)."""
    import cv2

    if not images:  # cycled for ever, none would come: the loop spun at 100% CPU
        raise UserError("the bundle has no sample frames to measure on: give --source URI (a camera, a file, "
                        "synthetic://road) or export the bundle again")
    width, height = size
    kept = max(1, min(len(images), image_files.max_pixels() // (width * height)))
    return [cv2.resize(im, size, interpolation=getattr(cv2, interpolation)) for im in images[:kept]]


def camera_sized(images, size):
    """The frames at a camera's size (width, height)."""
    why = image_files.over_budget(*size)
    if why:
        raise UserError("--frame-size %dx%d: %s" % (size + (why,)))
    return _held(images, size, "INTER_LINEAR")


def frame_size(text):
    """--frame-size WxH -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected WIDTHxHEIGHT, such as 1280x720: %r" % text) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError("a frame needs a width and a height of at least 1: %r" % text)
    return width, height


def network_sized(bundle, images):
    """The frames at the size whose crop is exactly the network's input size, so preprocessing does no
    resize: what is left to measure is the pipeline itself (colour conversion, scaling, inference, handoffs)."""
    why = image_files.over_budget(*bundle.network_frame_size)
    if why:  # a crop of a small part of the frame makes this frame large
        raise UserError("%s: the frame whose crop is the network's input would be %s"
                        % (image_files.shown(bundle.path), why))
    return _held(images, tuple(bundle.network_frame_size), "INTER_AREA")


class MemoryFrames(Source):
    """Decoded frames held in memory, cycled as fast as they are read (every frame, in order). Each is copied
    into one of a few buffers used in turn, as a decoder writes into its buffer pool, so an overlay drawn on one
    never reaches the next time round, and no frame costs a fresh allocation (at 1920x1080, 6 MB of page faults
    that neither a decoder nor the tutorial loop's frames pay). A frame is done with before its buffer comes
    round again: read inline (run(..., capture_thread=False)) one is in flight, and with a capture thread at
    most FILE_QUEUE + 2 (queued, being read, in the model)."""

    RING = FILE_QUEUE + 3  # buffers: one more than frames can be in flight

    def __init__(self, images, uri="memory://samples"):
        self.images, self.uri = list(images), uri

    def _images(self):
        ring, n = [None] * self.RING, 0
        while True:
            for image in self.images:
                slot, n = n % self.RING, n + 1
                if ring[slot] is None or ring[slot].shape != image.shape:
                    ring[slot] = np.empty_like(image)
                np.copyto(ring[slot], image)
                yield ring[slot], None


def bare_fps(backend, batch, seconds=2.0):
    """The backend alone, on one ready input, for about `seconds`: the most any pipeline can reach."""
    for _ in range(10):
        backend.infer(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        backend.infer(batch)
        n += 1
    return n / (time.perf_counter() - t0)


class Tegrastats:
    """GPU load (GR3D_FREQ %) and board power (VDD_IN mW) from tegrastats while the run lasts."""

    def __init__(self):
        self.gpu, self.power = [], []
        self.proc = subprocess.Popen(["tegrastats", "--interval", "500"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            gpu = re.search(r"GR3D_FREQ (\d+)%", line)
            power = re.search(r"VDD_IN (\d+)mW", line)
            if gpu:
                self.gpu.append(int(gpu.group(1)))
            if power:
                self.power.append(int(power.group(1)))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        return {"gpu_load_percent": _mean(self.gpu), "board_power_mw": _mean(self.power)}


def _mean(values):
    return round(sum(values) / len(values), 1) if values else None


def trtexec_fps(engine_path, seconds=5):
    """trtexec's pure engine rate on the same engine (where JetPack's trtexec is installed), or None."""
    found = [shutil.which(t) or t for t in TRTEXEC if shutil.which(t) or os.path.isfile(t)]
    if not found:
        return None
    exe = found[0]
    out = subprocess.run([exe, "--loadEngine=%s" % engine_path, "--duration=%d" % seconds],
                         capture_output=True, text=True).stdout
    match = re.search(r"Throughput:\s*([\d.]+)\s*qps", out)
    return float(match.group(1)) if match else None


def bench(bundle_path, source_uri=None, frames=1000, backend="auto", warmup=50, started=None, log=sys.stderr,
          size=None, gst_preprocess="auto", gpu_preprocess="auto"):
    with Model(bundle_path, backend=backend, gpu_preprocess=gpu_preprocess if size else "off",
               frame_size=size) as model:
        request = model.preprocess.request(gst_preprocess)  # bench has no outputs: nothing needs the whole frame
        if source_uri is None and size is not None:
            source = MemoryFrames(camera_sized(bundle_samples(model.bundle), size), "memory://samples@%dx%d" % size)
        elif source_uri is None:
            source = MemoryFrames(network_sized(model.bundle, bundle_samples(model.bundle)))
        else:
            source = open_source(source_uri, prepare=request)
        with source:
            model.preprocess.prepared = source.prepared
            first = next(iter(source))
            model(first.image)
            startup = time.time() - started if started else None
            # frames in memory at the network's size: nothing to overlap with a capture thread; at a camera's
            # size, preprocessing overlaps with the model there (pipeline.Prepare), as it does for a file
            inline = source_uri is None and size is None
            run(model, source, max_frames=warmup, log=None, capture_thread=not inline)
            jetson = platform.l4t_release() is not None
            stats_tegra = Tegrastats() if jetson and shutil.which("tegrastats") else None
            rss_before = rss_mb()
            stats = run(model, source, max_frames=frames, log=None, capture_thread=not inline)
            rss_after = rss_mb()
            tegra = stats_tegra.stop() if stats_tegra else None
        bare = bare_fps(model.backend, model.prepare(first.image).copy())
        report = stats.as_dict()
        report["paths"] = model.paths()
        report.update(source=source.uri, bare_fps=round(bare, 1), peak_rss_mb=round(peak_rss_mb(), 1),
                      frame_size=list(first.image.shape[1::-1]),
                      startup_s=None if startup is None else round(startup, 3),
                      per_frame_ms=round(1000.0 / stats.fps, 4) if stats.fps else None,
                      bare_ms=round(1000.0 / bare, 4),
                      rss_growth_mb=None if rss_before is None else round(rss_after - rss_before, 2))
        if jetson:
            report["power_mode"] = platform.power_mode()
            if tegra:
                report.update(tegra)
            if model.backend.name == "tensorrt":
                report["trtexec_fps"] = trtexec_fps(model.backend.path)
    return report


def main(args):
    if args.source is not None and args.frame_size is not None:
        raise UserError("--frame-size sizes the frames held in memory: give it without --source")
    if args.gpu_preprocess == "on" and args.frame_size is None:
        raise UserError("--gpu-preprocess on needs --frame-size (the engine is built for one frame size)")
    report = bench(args.bundle, args.source, args.frames, args.backend, args.warmup, started=process_start_epoch(),
                   size=args.frame_size, gst_preprocess=args.gst_preprocess, gpu_preprocess=args.gpu_preprocess)
    print("%s on %s (%dx%d frames): %.1f FPS end to end (%.3f ms/frame; the backend alone %.1f FPS, %.3f ms), "
          "latency p50 %.2f ms p95 %.2f ms, slowest stage %.1f FPS (end to end %.2f of it), peak RSS %.0f MB, "
          "first result %.2f s after start"
          % (report["backend"], report["source"], report["frame_size"][0], report["frame_size"][1], report["fps"],
             report["per_frame_ms"], report["bare_fps"], report["bare_ms"], report["latency_ms"]["p50"],
             report["latency_ms"]["p95"], report["slowest_stage_fps"], report["fps"] / report["slowest_stage_fps"],
             report["peak_rss_mb"], report["startup_s"] or float("nan")))
    print("stages (ms/frame): " + ", ".join("%s %.3f" % kv for kv in report["stages_ms"].items())
          + "; resident memory grew %s MB over the measured frames" % report["rss_growth_mb"])
    print("where each step ran: " + ", ".join("%s %s" % kv for kv in report["paths"].items()))
    if args.json:
        write_json(args.json, report)
        print("wrote %s" % args.json)
    return 0


def add_parser(sub):
    bench = sub.add_parser("bench", help="measure a bundle end to end: FPS, latency, stages, memory, start-up")
    bench.prog = "python -m runtime bench"
    bench.add_argument("bundle")
    bench.add_argument("--source", "--input", dest="source", metavar="URI",
                       help="default: the bundle's samples held in memory (no decoder in the way)")
    bench.add_argument("--frame-size", type=frame_size, metavar="WxH",
                       help="hold the samples in memory at this camera size (1280x720), not the network's: "
                            "preprocessing at its real cost, no decoder in the way")
    bench.add_argument("--gst-preprocess", choices=GST_MODES, default="auto",
                       help="with --source csi://: crop (auto, crop) or crop and scale (on) in the camera's "
                            "pipeline, or not (off); docs/runtime.md")
    bench.add_argument("--gpu-preprocess", choices=GPU_MODES, default="auto",
                       help="with --frame-size and TensorRT: the engine takes the whole frame and preprocesses it "
                            "on the GPU (auto: where the contract allows; on; off)")
    bench.add_argument("--frames", type=positive_int, default=1000, metavar="N", help="frames measured (1000)")
    bench.add_argument("--warmup", type=positive_int, default=50, metavar="N", help="frames first, not measured")
    bench.add_argument("--backend", choices=BACKENDS, default="auto")
    bench.add_argument("--json", metavar="FILE", help="write the report as JSON")
    add_max_image_pixels(bench)
