"""Percentiles in bounded memory, for runs that last months: Histogram (fixed log-spaced bins over the whole run,
within 0.5% of the exact value) and Window (the last N values exactly, for a status line and the browser view).

    latency = Histogram()          # 18 KB whatever the run's length
    latency.add(3.2)               # O(1): one log and one counter
    latency.percentile(95)         # O(bins), about 20 us: a cumulative sum and a search
    recent = Window(1024)          # the last 1,024 values, 8 KB
    recent.add(3.2); recent.percentile(50)

A run at 30 FPS for 7 days is 18 million frames: kept one by one they took 145 MB and 0.75 s a status line
(issue 29); here they take 27 KB and under a millisecond. Both are safe to read from another thread while
one thread adds (the browser view asks while the pipeline adds): a read sees a consistent enough copy.
"""

from __future__ import annotations

import array
import math

import numpy as np

LOW, HIGH = 1e-3, 1e7  # the bins' range (1 us to 2.8 h in milliseconds); values beyond go to the end bins
RATIO = 1.01  # each bin 1% wider than the one before: a value is known within half of that


class Histogram:
    """Counts of values in log-spaced bins from LOW to HIGH, each RATIO times the one before, with the exact
    count, sum, minimum and maximum. percentile() gives the geometric middle of the bin that holds it, held
    within the exact minimum and maximum: within 0.5% of numpy's percentile on the same values (where
    values are at least LOW; zero and below count in the first bin)."""

    BINS = int(math.ceil(math.log(HIGH / LOW) / math.log(RATIO))) + 1

    def __init__(self):
        self.counts = array.array("q", bytes(8 * self.BINS))
        self.count, self.total = 0, 0.0
        self.min, self.max = math.inf, -math.inf
        self._scale = 1.0 / math.log(RATIO)
        self._log_low = math.log(LOW)

    def _bin(self, value):
        if not value > LOW:  # also NaN: counted, in the first bin
            return 0
        return min(int((math.log(value) - self._log_low) * self._scale) + 1, self.BINS - 1)

    def add(self, value):
        self.counts[self._bin(value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def add_many(self, values):
        """Many values at once (a numpy array): the same as add() for each, at numpy's speed."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if not values.size:
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            bins = np.floor((np.log(np.maximum(values, LOW)) - self._log_low) * self._scale).astype(np.int64) + 1
        bins[~(values > LOW)] = 0
        np.minimum(bins, self.BINS - 1, out=bins)
        counts = np.frombuffer(self.counts, dtype=np.int64)
        counts += np.bincount(bins, minlength=self.BINS)
        self.count += int(values.size)
        self.total += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def percentile(self, q):
        """The q-th percentile (0-100), 0.0 when empty: numpy's linear method, between the two values around
        the rank, each known as its bin's middle."""
        if not self.count:
            return 0.0
        cumulative = np.cumsum(np.frombuffer(self.counts, dtype=np.int64))  # a copy: another thread may add
        rank = q / 100.0 * (int(cumulative[-1]) - 1)
        below = math.floor(rank)
        lo, hi = np.searchsorted(cumulative, [below + 1, below + 2])  # the bins of the values ranked below, above
        low, high = self._middle(int(lo)), self._middle(int(min(hi, self.BINS - 1)))
        return float(low + (rank - below) * (high - low))

    def _middle(self, index):
        if index == 0:  # at or below LOW
            return self.min
        if index == self.BINS - 1:  # at or above HIGH
            return self.max
        return min(max(LOW * RATIO ** (index - 0.5), self.min), self.max)

    def __len__(self):
        return self.count

    @property
    def mean(self):
        return self.total / self.count if self.count else 0.0

    @property
    def nbytes(self):
        return self.counts.itemsize * len(self.counts)


class Window:
    """The last `size` values, exactly, in a ring of doubles: percentiles over the recent past."""

    def __init__(self, size=1024):
        self.values = array.array("d", bytes(8 * size))
        self.size, self.next, self.filled = size, 0, 0

    def add(self, value):
        self.values[self.next] = value
        self.next = (self.next + 1) % self.size
        if self.filled < self.size:
            self.filled += 1

    def add_many(self, values):
        """Many values at once (a numpy array), as add() for each."""
        values = np.asarray(values, dtype=np.float64).ravel()[-self.size:]
        ring, n = np.frombuffer(self.values, dtype=np.float64), values.size
        first = min(n, self.size - self.next)
        ring[self.next:self.next + first] = values[:first]
        ring[:n - first] = values[first:]
        self.next = (self.next + n) % self.size
        self.filled = min(self.size, self.filled + n)

    def last(self, n=None):
        """A copy of the last n values (all held, when n is None), oldest first."""
        n = self.filled if n is None else min(n, self.filled)
        if not n:
            return np.zeros(0)
        ring = np.frombuffer(self.values, dtype=np.float64)
        start = (self.next - n) % self.size
        if start + n <= self.size:
            return ring[start:start + n].copy()
        return np.concatenate([ring[start:], ring[:self.next]])

    def percentile(self, q, n=None):
        values = self.last(n)
        return float(np.percentile(values, q)) if values.size else 0.0

    def __len__(self):
        return self.filled

    @property
    def nbytes(self):
        return self.values.itemsize * self.size
