"""A client-side request budget that no rolling window can exceed.

HubSpot counts requests in a rolling window (TEN_SECONDLY_ROLLING: 190 per 10 s). A token
bucket of that capacity lets up to twice its capacity through in one rolling window (a full
bucket, then the refill), so the budget here is the window itself: a request may start only
while fewer than `limit` requests finished or are in flight within the last `window_s`. A
slot is stamped when its response arrives, which is after the server counted it, so the
server's own count of any window never exceeds `limit` either, however long requests take.
"""

from __future__ import annotations

import collections
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class RollingWindowLimiter:
    """At most `limit` requests per rolling `window_s` seconds, across the threads that share it."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._done: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self.waited_s = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """`with limiter.slot(): send()` — waits for room, then counts the request until it ends."""
        self._acquire()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._done.append(self._clock())

    def _acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._done and self._done[0] <= now - self.window_s:
                    self._done.popleft()
                if len(self._done) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return
                wait = (self._done[0] + self.window_s - now) if self._done else 0.01
            wait = max(wait, 0.001)
            self.waited_s += wait
            self._sleep(wait)


_shared: dict[tuple[str, int, float], RollingWindowLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(account: str, limit: int, window_s: float) -> RollingWindowLimiter:
    """The limiter of one CRM account in this process, so consecutive pushes share one budget."""
    key = (account, limit, window_s)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = RollingWindowLimiter(limit, window_s)
        return _shared[key]
