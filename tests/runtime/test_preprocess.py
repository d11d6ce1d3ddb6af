"""The exact area downscale (runtime/resize.py, both routes) against the area average computed the long way, and against
OpenCV's INTER_AREA that it replaces: the same tensor to one uint8 step on at most 1% of values (no timing is
asserted: benchmarks/preprocess.py measures the speed)."""

import os

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")


def _area_reference(img, w, h):
    """The box average of a pixel-constant image, by the overlap of every source pixel with every box (float64)."""
    def weights(n_in, n_out):
        edges = np.arange(n_out + 1) * n_in / n_out
        lo, hi = edges[:-1, None], edges[1:, None]
        pixel = np.arange(n_in)[None, :]
        return np.clip(np.minimum(pixel + 1, hi) - np.maximum(pixel, lo), 0, None) / (n_in / n_out)

    wy, wx = weights(img.shape[0], h), weights(img.shape[1], w)
    columns = np.tensordot(wy, img.astype(np.float64), axes=(1, 0))  # (h, W, 3)
    return np.einsum("yjc,xj->yxc", columns, wx)


SIZES = [((432, 1280), (200, 66)), ((648, 1920), (200, 66)), ((37, 53), (10, 7)), ((20, 41), (41, 3)),
         ((9, 13), (1, 1)), ((720, 1280), (28, 28)), ((739, 1640), (200, 66)), ((720, 1280), (150, 150)),
         ((66, 1280), (200, 66)), ((432, 1000), (200, 66)), ((432, 200), (200, 66))]  # a factor of 1 or whole


@pytest.mark.parametrize("in_hw, out_wh", SIZES)
def test_both_routes_give_the_exact_area_average_rounded(in_hw, out_wh):
    """The separable route exactly, ties half to even; the integral route to float32's rounding of a tie."""
    from runtime.resize import IntegralAreaResize, SeparableAreaResize

    rng = np.random.default_rng(sum(in_hw))
    img = rng.integers(0, 256, in_hw + (3,), dtype=np.uint8)
    exact = _area_reference(img, *out_wh)
    clear = np.abs(exact - np.floor(exact) - 0.5) > 1e-6  # not a tie, where either neighbour is right
    routes = [IntegralAreaResize(cv2, in_hw, out_wh)]
    if SeparableAreaResize.exact(in_hw, out_wh):  # where its sums fit, chosen or not
        routes.append(SeparableAreaResize(in_hw, out_wh))
    for route in routes:
        ours = route(img)
        assert ours.dtype == np.float32 and ours.shape == (out_wh[1], out_wh[0], 3)
        assert np.array_equal(ours[clear], np.rint(exact[clear])) and np.abs(ours - exact).max() <= 0.5 + 1e-6
    if len(routes) == 2:
        ties = ~clear
        assert np.array_equal(routes[1](img)[ties], np.rint(np.round(exact[ties] * 2) / 2))  # half to even


def test_the_separable_route_is_chosen_where_it_is_exact_and_cheaper():
    from runtime.resize import SeparableAreaResize, area_resize, optimized_blas

    def chosen(size, blas=True):
        return SeparableAreaResize.applies(*size, blas)

    assert chosen(((432, 1280), (200, 66))) and chosen(((648, 1920), (200, 66)))  # PilotNet at 720p and 1080p
    assert not chosen(((432, 1280), (200, 66)), blas=False)  # the reference BLAS: its matmul costs 1.5 ms
    assert not chosen(((739, 1640), (200, 66)))  # 255 x 739 rows' weight overflows uint16
    assert not chosen(((720, 1280), (150, 150)))  # 15 columns a period: the matmul costs more
    assert not SeparableAreaResize.exact((1470, 3264), (200, 66))  # 255 x 245 x 408 > 2^24 across
    route = area_resize(cv2, (432, 1280), (200, 66))
    assert isinstance(route, SeparableAreaResize) == optimized_blas()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_pilotnets_frames_are_opencvs_within_one_step_on_few_values(size):
    """Before the colour map, on road frames at camera sizes: what the network saw before, to one uint8 step
    where OpenCV's float32 sum lands on the other side of a half."""
    from runtime.preprocess import Preprocessor
    from runtime.sim import road

    pre = {"crop": {"top": 0.4, "bottom": 1.0, "left": 0.0, "right": 1.0}, "color": "bgr", "scale": 1.0,
           "offset": 0.0, "resize": {"width": 200, "height": 66, "interpolation": "area"}}
    prep = Preprocessor(pre, {"layout": "NHWC", "shape": [None, 66, 200, 3]})
    frames, _ = road.sample_frames(3, size[0], size[1], seed=21)
    for frame in frames:
        before = cv2.resize(frame[round(0.4 * size[1]):], (200, 66), interpolation=cv2.INTER_AREA)
        diff = np.abs(prep(frame)[0] - before)
        assert diff.max() <= 1 and np.mean(diff > 0) <= 0.01, (diff.max(), np.mean(diff > 0))
    assert [k for k, v in prep._area.items() if v is not None] == [(size[1] - round(0.4 * size[1]), size[0])]


@pytest.mark.parametrize("in_hw", [(132, 400), (66, 200), (12, 16), (108, 320)])
def test_opencv_keeps_integer_factors_upscales_and_small_factors(in_hw):
    """Where OpenCV's own INTER_AREA is fast (an integer factor: its fast path) or not a box average (an
    upscale), or costs little (320x108), the Preprocessor's resize is OpenCV's, unchanged."""
    from runtime.preprocess import Preprocessor
    from runtime.resize import exact_area_pays

    out = (24, 14) if in_hw == (12, 16) else (200, 66)
    pre = {"crop": None, "color": "bgr", "scale": 1.0, "offset": 0.0,
           "resize": {"width": out[0], "height": out[1], "interpolation": "area"}}
    prep = Preprocessor(pre, {"layout": "NHWC", "shape": [None, out[1], out[0], 3]})
    img = np.random.default_rng(3).integers(0, 256, in_hw + (3,), dtype=np.uint8)
    assert not exact_area_pays((in_hw[1], in_hw[0]), out)
    assert np.array_equal(prep(img)[0], cv2.resize(img, out, interpolation=cv2.INTER_AREA).astype(np.float32))


def test_a_frame_too_large_for_int32_sums_takes_float64_sums():
    from runtime.resize import IntegralAreaResize

    assert IntegralAreaResize(cv2, (432, 1280), (200, 66)).sdepth == cv2.CV_32S
    assert IntegralAreaResize(cv2, (3000, 3000), (200, 66)).sdepth == cv2.CV_64F  # 255 x 9e6 > 2**31


def test_a_crop_cut_at_the_sides_is_read_where_it_lies():
    """A left/right crop is a view whose rows are not contiguous: the rows are gathered from it as they are."""
    from runtime.resize import SeparableAreaResize

    img = np.random.default_rng(5).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    view = img[288:, 100:1180]
    exact = _area_reference(np.ascontiguousarray(view), 200, 66)
    assert np.abs(SeparableAreaResize(view.shape[:2], (200, 66))(view) - exact).max() <= 0.5 + 1e-6


def test_a_box_just_past_a_tie_rounds_up_where_float32_would_land_on_the_tie():
    """period x columns = 241 x 273 = 65793 (> 2^16): box (0, 0) averages 200.5 + 1/(2 x 65793), within half a
    float32 ulp of the tie; the division in float64 rounds it to 201, as the exact average does (the review's
    case)."""
    from runtime.resize import SeparableAreaResize

    img = np.full((241, 273, 3), 200, np.uint8)
    img[:60, :136] += 1
    img[60, :64] += 1
    img[120, 136] += 1
    assert SeparableAreaResize.exact((241, 273), (2, 2))
    assert SeparableAreaResize((241, 273), (2, 2))(img)[0, 0].tolist() == [201.0] * 3
    assert not SeparableAreaResize.exact((1, 1), (1, 70000))  # an upscale is not its job


def test_numpys_own_blas_decides_not_a_library_beside_it():
    """pip's numpy bundles OpenBLAS in numpy.libs/ (this venv); pip's opencv-python bundles another, which must
    not count (the board-like venv's Debian numpy uses the reference BLAS beside it)."""
    import cv2  # noqa: F401  (its own OpenBLAS mapped, where pip's opencv-python is the one installed)
    import numpy
    from runtime.resize import optimized_blas

    libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    bundled = os.path.isdir(libs) and any("openblas" in n for n in os.listdir(libs))
    if bundled:
        assert optimized_blas()
