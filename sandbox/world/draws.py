"""Random streams and day arithmetic the simulator plans with."""

from __future__ import annotations

import numpy as np

from sandbox.world.config import DAY

WORKING_HOURS_START = 9 * 3600  # work is stamped from 9 am


def month_starts(start: int, end: int) -> np.ndarray:
    """Epoch seconds of the first of each month from `start`'s month through `end`'s, plus one."""
    first = np.datetime64(start, "s").astype("datetime64[M]")
    last = np.datetime64(end, "s").astype("datetime64[M]")
    months = np.arange(first, last + 2, dtype="datetime64[M]")
    return months.astype("datetime64[s]").astype(np.int64)


def day_of(ts: np.ndarray) -> np.ndarray:
    return (np.asarray(ts) // DAY).astype(np.int64)


def weekday(day: np.ndarray) -> np.ndarray:
    """0 = Monday for day numbers since 1970-01-01 (a Thursday)."""
    return (np.asarray(day) + 3) % 7


def next_weekday(day: np.ndarray) -> np.ndarray:
    wd = weekday(day)
    return day + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def stream(seed: int, month: int, kind: int) -> np.random.Generator:
    return np.random.default_rng([seed, month, kind])


def uniform_seconds(rng: np.random.Generator, low_days: float, high_days: float, n: int) -> np.ndarray:
    return (rng.uniform(low_days, high_days, n) * DAY).astype(np.int64)


def expand_ranges(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [start, stop): (owner index, value) for every integer in every range."""
    counts = np.maximum(stop - start, 0)
    owner = np.repeat(np.arange(len(start)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, start[owner] + offsets
