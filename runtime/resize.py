"""Area downscaling of a uint8 image at a non-integer factor, exactly, in a fraction of OpenCV's INTER_AREA time.

The contract's `area` resize averages the source over each output pixel's box, whose edges fall between pixels
at a non-integer factor (PilotNet: 1280x432 -> 200x66, boxes 6.4 x 6.55 pixels). OpenCV does that in a scalar
loop over every source pixel (1.8 ms for that frame on one x86 core). Here: one cv2.integral of the image (a
SIMD pass, int32), and the integral sampled at the (h+1) x (w+1) box corners. The integral of an image that is
constant within each pixel is bilinear within each pixel cell, so at a corner between pixels it is the bilinear
blend of the four integral pixels around it, and a box's sum is the difference of its four corners: exact,
not an approximation. One cv2.remap (nearest, a gather) picks the four integral pixels around every corner
(4 x 67 x 201 x 3 for PilotNet), and the differences are taken in integers before anything is blended in
float32, which could not hold integral values (up to 255 x the pixel count) to a unit but holds their small
differences exactly. Rounded half to even, as OpenCV rounds.
The result is float32 (whole values 0..255), ready for the colour map.
"""

from __future__ import annotations

import numpy as np

MIN_AREA_FACTOR = 4  # source pixels per output pixel from which the integral route is the faster
_NEAREST_MAP_LIMIT = 32767  # cv2.convertMaps' 16-bit maps hold coordinates below this


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
    """Whether AreaResize should stand in for cv2.resize(INTER_AREA): a downscale (both factors at least 1)
    where some factor is not an integer, by at least MIN_AREA_FACTOR in pixels. An upscale is OpenCV's
    bilinear-like INTER_AREA and an integer factor OpenCV's own fast path; a small factor costs OpenCV little
    (320x108 -> 200x66: the same time either way, measured): those stay with OpenCV, as they were."""
    (w_in, h_in), (w, h) = in_wh, out_wh
    return (w_in >= w and h_in >= h and (w_in % w != 0 or h_in % h != 0)
            and w_in * h_in >= MIN_AREA_FACTOR * w * h)


class AreaResize:
    """Resizes uint8 H x W x 3 images of one size to (width, height) by area: call it with the image."""

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
