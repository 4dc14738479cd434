"""Projections of the simulated world into each system's state, as of a moment.

`generate` projects everything up to the as-of date; `advance` projects only the records whose
life had an event in the new window, with the state they have at its end. Each system decides
which events it can see: an ERP posting does not touch the CRM's modification stamp.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np



@dataclasses.dataclass(frozen=True)
class Window:
    """Project events in (start, end]; `start` None means from the beginning of history.

    `floor_ms` is the earliest modification stamp a changed record may carry: API writes may
    already have stamped records up to it, and stamps must never go backwards.
    """

    start: int | None
    end: int
    floor_ms: int = 0

    @property
    def floor_s(self) -> int:
        return -(-self.floor_ms // 1000)

    @property
    def is_full(self) -> bool:
        return self.start is None

    def visible(self, created: np.ndarray) -> np.ndarray:
        return np.asarray(created) <= self.end

    def last(self, *events: np.ndarray) -> np.ndarray:
        """Latest of the events that have happened by the window's end (-1 if none)."""
        stacked = np.stack([np.asarray(e, dtype=np.int64) for e in events])
        return np.where(stacked <= self.end, stacked, -1).max(axis=0)

    def changed(self, *events: np.ndarray) -> np.ndarray:
        """Records with an event inside the window (all records with any event, if full)."""
        stacked = np.stack([np.asarray(e, dtype=np.int64) for e in events])
        low = -(2**62) if self.start is None else self.start
        return ((stacked > low) & (stacked <= self.end)).any(axis=0)

    def stamp_s(self, last: np.ndarray) -> np.ndarray:
        """Modification stamps (s) for changed records, never below the floor."""
        return last if self.is_full else np.maximum(last, self.floor_s)

    def stamp_ms(self, last_s: np.ndarray, jitter_ms: np.ndarray) -> np.ndarray:
        ms = np.asarray(last_s, dtype=np.int64) * 1000 + jitter_ms
        return ms if self.is_full else np.maximum(ms, self.floor_ms)


def iso_seconds(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def day_strings(days: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD' for day numbers since the epoch."""
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]"))
