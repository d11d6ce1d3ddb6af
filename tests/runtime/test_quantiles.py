"""Statistics in bounded memory (runtime/quantiles.py, pipeline.Stats): percentiles within 0.5% of numpy's over
any number of values, and the status line's work independent of the run's length."""

import tracemalloc

import numpy as np
import pytest

from runtime.pipeline import Stats
from runtime.quantiles import Histogram, Window


@pytest.mark.parametrize("values", [np.random.RandomState(0).lognormal(1.0, 0.6, 200000),
                                    np.random.RandomState(1).exponential(3.0, 999),
                                    np.array([1.0, 100.0]), np.array([7.5]),
                                    np.random.RandomState(2).uniform(0.01, 5000.0, 50000)],
                         ids=["lognormal", "exponential", "two-far-apart", "one", "uniform"])
def test_percentiles_are_within_half_a_percent_of_numpys_one_by_one_or_in_batches(values):
    one_by_one, batches = Histogram(), Histogram()
    for v in values[:3000]:
        one_by_one.add(float(v))
    for chunk in np.array_split(values, 7):
        batches.add_many(chunk)
    for q in (0, 1, 25, 50, 90, 95, 99, 100):
        exact = np.percentile(values, q)
        assert batches.percentile(q) == pytest.approx(exact, rel=0.005)
        assert one_by_one.percentile(q) == pytest.approx(np.percentile(values[:3000], q), rel=0.005)
    assert batches.count == values.size and batches.max == values.max() and batches.min == values.min()
    assert batches.mean == pytest.approx(values.mean())


def test_values_outside_the_bins_and_an_empty_histogram():
    h = Histogram()
    assert h.percentile(50) == 0.0 and h.mean == 0.0
    h.add_many(np.array([0.0, 1e-9, 5e9, 5e9]))
    assert h.percentile(0) == 0.0 and h.percentile(100) == 5e9  # held within the exact minimum and maximum
    assert len(h) == 4


def test_a_window_holds_the_last_values_exactly():
    w = Window(5)
    assert w.percentile(50) == 0.0 and len(w) == 0
    for v in range(8):
        w.add(float(v))
    assert list(w.last()) == [3, 4, 5, 6, 7] and list(w.last(2)) == [6, 7]
    w.add_many(np.arange(100.0, 103.0))
    assert list(w.last()) == [6, 7, 100, 101, 102]
    w.add_many(np.arange(12.0))
    assert list(w.last()) == [7, 8, 9, 10, 11] and w.percentile(50) == 9.0


def test_ten_million_frames_of_statistics_stay_under_a_megabyte_and_a_status_line_copies_nothing_of_them():
    """Issue 29: 7 days at 30 FPS kept every latency (145 MB) and took 0.75 s a status line. Fed 10^7 latencies
    in batches, Stats keeps under 1 MB, and the status line allocates only a few kilobytes: its work is over
    the bins and the window, not over the frames (its time is in benchmarks/soak.py)."""
    rng = np.random.RandomState(3)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stats = Stats("test")
        for _ in range(10):
            batch = rng.lognormal(1.5, 0.4, 1000000)
            stats.latency.add_many(batch)
            stats.recent.add_many(batch)
            stats.frames += batch.size
            del batch
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        at_rest = tracemalloc.get_traced_memory()[0]
        line = stats.summary(recent=True)
        whole = stats.summary()
        peak = tracemalloc.get_traced_memory()[1] - at_rest
    finally:
        tracemalloc.stop()
    assert stats.latency.count == 10 ** 7 and "10000000 frames" in whole
    assert held < 1 << 20, held
    assert peak < 64 << 10, peak  # the bins' cumulative sums and the window's copy: tens of KB
    assert "over the last 1024 frames" in line
    p50 = float(whole.split("latency p50 ")[1].split(" ")[0])
    assert p50 == pytest.approx(np.exp(1.5), rel=0.02)  # lognormal's median, to the summary's 0.1 ms


def test_the_status_lines_rate_is_the_last_seconds_not_the_runs_average():
    """Issue 29: the browser view and the status line showed the whole run's average, so a camera that fell from
    30 to 2 FPS after a day still read 30. The rate now covers the last RATE_S seconds, up to now."""
    stats = Stats("test")
    start = stats.start
    for i in range(3000):  # 100 s at 30 FPS
        stats.times.add(start + i / 30.0)
    stats.frames, stats.end = 3000, start + 100.0
    assert stats.current_fps(start + 100.0) == pytest.approx(30.0, rel=0.01)
    for i in range(20):  # then 10 s at 2 FPS
        stats.times.add(start + 100.0 + (i + 1) / 2.0)
    stats.frames, stats.end = 3020, start + 110.0
    assert stats.current_fps(start + 110.0) == pytest.approx(2.0, rel=0.01)
    assert stats.fps == pytest.approx(3020 / 110.0, rel=0.01)  # the summary's average is still the run's
    assert stats.current_fps(start + 120.0) == 0.0  # stalled for 10 s
    fast = Stats("test")
    for i in range(5000):  # 1,000 FPS: the window's 1,024 frames span 1 s, the rate is theirs
        fast.times.add(fast.start + i / 1000.0)
    assert fast.current_fps(fast.start + 5.0) == pytest.approx(1000.0, rel=0.01)
    assert Stats("test").current_fps() == 0.0
