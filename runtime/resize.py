"""Area downscaling of a uint8 image at a non-integer factor, exactly, in a fraction of OpenCV's INTER_AREA time.

The contract's `area` resize averages the source over each output pixel's box, whose edges fall between pixels
at a non-integer factor (PilotNet: 1280x432 -> 200x66, boxes 6.4 x 6.55 pixels). OpenCV does that in a scalar
loop over every source pixel (1.7 ms for that frame on one x86 core). `area_resize()` picks one of two routes
that both compute the exact box average:

- **Separable, in integers** (`SeparableAreaResize`, the faster where it applies: PilotNet at 720p and 1080p).
  Down the rows: every box row's weights are whole multiples of 1/den (den = h / gcd(H, h): 11 for 432 -> 66),
  so den x the weighted row sums are integers. Each box's whole run of rows [r_i, r_i+1) is summed by uint16
  adds of rows gathered once, box after box in the frame's order (the same count for every box; a box one row
  shorter takes its neighbour's first row and gives it back), then each edge row's fractions are added and
  subtracted with integer weights. uint16 arithmetic wraps, and the result (at most 255 x H / gcd(H, h)) is
  below 2^16, so it comes out exact.
  Across: the weights repeat every W / gcd(W, w) source pixels (32 -> 5 for 1280 -> 200), so one float32
  matmul of every period with that small integer matrix sums the columns; its values are integers below 2^24,
  exact in float32. The matmuls are cut small enough that OpenBLAS does them in the calling thread. The final
  division is in float64, so the average is rounded half to even exactly.
- **The integral image** (`IntegralAreaResize`, every other downscale): one cv2.integral of the image (a SIMD
  pass, int32), sampled at the (h+1) x (w+1) box corners. The integral of an image that is constant within
  each pixel is bilinear within each pixel cell, so a box's sum is the difference of its four bilinearly
  sampled corners. One cv2.remap (nearest, a gather) picks the four integral pixels around every corner, and
  differences are taken in integers before anything is blended in float32, which could not hold integral
  values (up to 255 x the pixel count) to a unit but holds their small differences. The fractions' float32
  rounding can tip an exact tie (x.5) either way.

The result is float32 (whole values 0..255), ready for the colour map.
"""

from __future__ import annotations

import os
from functools import lru_cache
from math import gcd

import numpy as np

MIN_AREA_FACTOR = 4  # source pixels per output pixel from which the exact routes are the faster
_NEAREST_MAP_LIMIT = 32767  # cv2.convertMaps' 16-bit maps hold coordinates below this
_PERIOD_COST = 2.5  # the separable route's matmul pays while (its period's outputs) < _PERIOD_COST x H / h
# OpenBLAS multiplies in one thread up to M x N x K = 65536 x GEMM_MULTITHREAD_THRESHOLD (4 by default;
# interface/gemm.c): larger, its workers wake and spin on the cores the pipeline's other threads run on
_ONE_THREAD_MNK = 65536 * 4


def area_resize(cv2, in_hw, out_wh):
    """The faster exact area resize of uint8 H x W x 3 images of one size to (width, height): a callable, which
    keeps its work arrays between calls (one thread at a time, as the Preprocessor's own buffer)."""
    if SeparableAreaResize.applies(in_hw, out_wh, optimized_blas()):
        return SeparableAreaResize(in_hw, out_wh)
    return IntegralAreaResize(cv2, in_hw, out_wh)


@lru_cache(maxsize=1)
def optimized_blas() -> bool:
    """Whether numpy's own BLAS is an optimized one (OpenBLAS, MKL or BLIS), from the libraries mapped into this
    process: the one pip's numpy wheels bundle (in numpy.libs/ beside the package), or the libblas.so.3 that
    Debian's and Ubuntu's numpy link, whose real path names its implementation (the alternatives system: the
    reference BLAS unless OpenBLAS is installed as it). Another library's own OpenBLAS (pip's opencv-python
    bundles one) does not count. With the reference BLAS the separable route's matmul costs 1.5 ms, not 0.1
    (measured), and the integral route is the faster."""
    bundled = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(np.__file__))), "numpy.libs") + os.sep
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    except OSError:  # not Linux: unknown, so the route that does not depend on it
        return False
    for path in paths:
        name = os.path.basename(path).lower()
        if path.startswith(bundled) and ("openblas" in name or "mkl" in name):
            return True
        if name.startswith(("libblas.so", "libcblas.so")):
            real = os.path.realpath(path).lower()
            if any(kind in real for kind in ("openblas", "mkl", "blis")):
                return True
    return False


def _bands(n_in, n_out):
    """The n_out + 1 box edges l * n_in / n_out along one axis, exactly: (the source index each edge falls in,
    its fraction into that pixel in units of 1/den, den, n_in / gcd): the box weights are multiples of 1/den."""
    g = gcd(n_in, n_out)
    edge = np.arange(n_out + 1) * n_in
    index = edge // n_out
    return index, (edge - index * n_out) // g, n_out // g, n_in // g


class SeparableAreaResize:
    """Down the rows in wrapping uint16 integers, across by a float32 matmul of every period (module docstring).
    Its work arrays (4 MB for PilotNet at 720p) are kept: allocated anew each call, glibc hands the memory back
    and faults it in again, which made a call 3 ms instead of 0.6 in a tight loop (measured)."""

    @staticmethod
    def exact(in_hw, out_wh) -> bool:
        """Whether it applies exactly: a downscale whose sums fit, down the rows in uint16, across as float32's
        whole numbers (below 2^24)."""
        (H, W), (w, h) = in_hw, out_wh
        period, cols = H // gcd(H, h), W // gcd(W, w)
        return H >= h and W >= w and 255 * period < 2 ** 16 and 255 * period * cols < 2 ** 24

    @staticmethod
    def applies(in_hw, out_wh, fast_blas) -> bool:
        """Where it is exact and its matmul across costs less than the integral image would (fast_blas: numpy
        multiplies with an optimized BLAS, optimized_blas())."""
        (H, W), (w, h) = in_hw, out_wh
        cheap = fast_blas and w // gcd(W, w) * h < _PERIOD_COST * H
        return cheap and SeparableAreaResize.exact(in_hw, out_wh)

    def __init__(self, in_hw, out_wh):
        H, W = in_hw
        w, h = out_wh
        index, fraction, den, period = _bands(H, h)
        count = index[1:] - index[:-1]  # the rows from a box's first edge row to the next's: n, or n - 1
        most = int(count.max())
        # every box's `most` rows from its first edge row, box after box: one gather reads the frame in order
        self.order = np.minimum(index[:-1, None] + np.arange(most)[None, :], H - 1).ravel()
        # a box one row short took the next box's first row in its last slot, whole: it gives den of it back
        short = np.concatenate([[0], count < most])
        below, above = (fraction - den * short)[1:], fraction[:-1]  # the edge row below a box, above it
        self.edge_weights = None
        if below.any() or above.any():  # uint16 weights mod 2^16: the sums wrap back to the exact value
            self.edge_weights = [(v % 2 ** 16).astype(np.uint16)[:, None] for v in (below, above)]
        # box i's bottom edge row is box i + 1's first gathered row; the last box's, the frame's last row
        self.bottom_rows = np.append(np.arange(1, h) * most, h * most - 1)
        self.den = np.uint16(den)
        g = gcd(W, w)
        cols, outs = W // g, w // g
        x, box = np.arange(cols)[:, None] * outs, np.arange(outs)[None, :] * cols
        across = np.clip(np.minimum(x + outs, box + cols) - np.maximum(x, box), 0, None)  # overlaps, x outs
        # each channel by itself; the columns padded to a multiple of 16, which OpenBLAS multiplies faster
        self.across = np.zeros((3 * cols, -(-3 * outs // 16) * 16), np.float32)
        self.across[:, :3 * outs] = np.kron(across, np.eye(3))
        # periods a matmul, so that BLAS keeps to one thread (where one period alone is not past its threshold)
        self.chunk = max(1, _ONE_THREAD_MNK // self.across.size)
        self.rows = np.empty((h * most, W, 3), np.uint8)
        self.sums, self.part = np.empty((h, W * 3), np.uint16), np.empty((h, W * 3), np.uint16)
        self.bottom = np.empty((h, W * 3), np.uint8)
        self.periods = np.empty((h * g, 3 * cols), np.float32)
        self.box = np.empty((h * g, self.across.shape[1]), np.float32)
        self.average = np.empty((h * g, 3 * outs), np.float64)
        self.most, self.divisor, self.in_hw = most, float(period * cols), (H, W)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if img.shape[:2] != self.in_hw:  # "clip" below would take any height
            raise ValueError("made for %dx%d images, given %dx%d" % (self.in_hw[::-1] + img.shape[1::-1]))
        np.take(img, self.order, axis=0, out=self.rows, mode="clip")  # "raise" copies through a buffer
        rows = self.rows.reshape(len(self.order), -1)
        by_box, sums, part = rows.reshape(len(self.sums), self.most, -1), self.sums, self.part
        if self.most > 1:
            np.add(by_box[:, 0], by_box[:, 1], out=sums, dtype=np.uint16)
        else:
            np.copyto(sums, by_box[:, 0])
        for s in range(2, self.most):
            np.add(sums, by_box[:, s], out=sums)
        if self.den != 1:
            np.multiply(sums, self.den, out=sums)
        if self.edge_weights is not None:
            below, above = self.edge_weights
            np.take(rows, self.bottom_rows, axis=0, out=self.bottom, mode="clip")
            np.add(sums, np.multiply(below, self.bottom, out=part), out=sums)
            np.subtract(sums, np.multiply(above, by_box[:, 0], out=part), out=sums)
        periods, box, average = self.periods, self.box, self.average
        np.copyto(periods, sums.reshape(periods.shape))
        for a in range(0, len(periods), self.chunk):
            np.matmul(periods[a:a + self.chunk], self.across, out=box[a:a + self.chunk])
        np.divide(box[:, :average.shape[1]], self.divisor, out=average, dtype=np.float64)  # float32's would tip
        # a tie: above 2^16 a non-tie can lie within half a float32 ulp of one
        return np.rint(average, out=average).astype(np.float32).reshape(len(sums), -1, 3)


def _edges(n_in, n_out):
    """The n_out + 1 box edges l * n_in / n_out along one axis as (index, fraction), exactly (integer arithmetic):
    the integral is sampled at index + fraction. The last edge (n_in) is (n_in - 1, 1.0), so index + 1 stays
    within the integral's n_in + 1 samples."""
    edge = np.arange(n_out + 1) * n_in
    index = edge // n_out
    fraction = (edge - index * n_out) / float(n_out)
    last = index == n_in
    index[last] -= 1
    fraction[last] = 1.0
    return index, fraction


def exact_area_pays(in_wh, out_wh) -> bool:
    """Whether area_resize() should stand in for cv2.resize(INTER_AREA): a downscale (both factors at least 1)
    where some factor is not an integer, by at least MIN_AREA_FACTOR in pixels. An upscale is OpenCV's
    bilinear-like INTER_AREA and an integer factor OpenCV's own fast path; a small factor costs OpenCV little
    (320x108 -> 200x66: the same time either way, measured): those stay with OpenCV, as they were."""
    (w_in, h_in), (w, h) = in_wh, out_wh
    return (w_in >= w and h_in >= h and (w_in % w != 0 or h_in % h != 0)
            and w_in * h_in >= MIN_AREA_FACTOR * w * h)


class IntegralAreaResize:
    """By the integral image sampled at the box corners (module docstring): any downscale."""

    def __init__(self, cv2, in_hw, out_wh):
        self.cv2 = cv2
        H, W = in_hw
        w, h = out_wh
        rows, f = _edges(H, h)
        cols, g = _edges(W, w)
        # four (h+1) x (w+1) blocks of integral pixels, stacked by rows: around each corner, the pixel itself,
        # the one to its right, the one below and the one below right
        xs = np.concatenate([np.broadcast_to(c, (h + 1, w + 1)) for c in (cols, cols + 1, cols, cols + 1)])
        ys = np.broadcast_to(np.concatenate([rows, rows, rows + 1, rows + 1])[:, None], xs.shape)
        xs, ys = xs.astype(np.float32), np.ascontiguousarray(ys, dtype=np.float32)
        if max(H, W) < _NEAREST_MAP_LIMIT:
            self.maps = cv2.convertMaps(xs, ys, cv2.CV_16SC2, nninterpolation=True)
        else:
            self.maps = (xs, ys)
        f = f.astype(np.float32)[:, None]
        g = np.repeat(g.astype(np.float32), 3)[None, :]  # one per value of a row of (w+1) x 3
        self.f, self.g, self.fg = f, g, f * g
        self.blocks, self.out_hw = (4, h + 1, (w + 1) * 3), (h, w)
        self.inverse_area = np.float32((w * h) / float(W * H))
        self.sdepth = cv2.CV_32S if 255 * H * W < 2 ** 31 else cv2.CV_64F

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """The box sums as differences of the bilinear corners F = A + gX + fY + fgP (A the integral pixel at the
        corner, X and Y its differences to the right and below, P the pixel at the corner), each difference taken
        in integers first, so float32 only ever sees small values."""
        cv2 = self.cv2
        integral = cv2.integral(img, sdepth=self.sdepth)
        a, b, c, d = cv2.remap(integral, self.maps[0], self.maps[1], cv2.INTER_NEAREST).reshape(self.blocks)
        x, y = b - a, c - a
        p = (d - c - x).astype(np.float32)
        box = _dx(a[1:] - a[:-1]).astype(np.float32)  # the whole pixels of each box, and the fractions
        box += _dx(self.g * (x[1:] - x[:-1]).astype(np.float32))  # of the columns at its left and right edges,
        fy = self.f * _dx(y).astype(np.float32)
        box += fy[1:] - fy[:-1]  # of the rows at its top and bottom,
        fgp = _dx(self.fg * p)
        box += fgp[1:] - fgp[:-1]  # and of the pixels at its corners
        box *= self.inverse_area
        h, w = self.out_hw
        return np.rint(box, out=box).reshape(h, w, 3)


def _dx(values):
    """Differences between neighbouring pixels along a row of (w+1) x 3 values (the last axis)."""
    return values[..., 3:] - values[..., :-3]
