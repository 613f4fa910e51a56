"""The emulator's clock: wall time by default; tests can pause it, move it, or jump it forward.

Every time-dependent answer reads this clock: a generation's status and its charge, signed-URL expiry, when a
request's log row becomes visible, the /v2/logs rate-limit window. So a test can hold renders (pause), make
30-60 s of log ingestion pass at once (advance), and never race real time. Sleeps injected by fault profiles
(``delay_seconds``) and the render work itself stay in real time.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: float | None = None

    def now(self) -> float:
        with self._lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    @property
    def paused(self) -> bool:
        return self._frozen is not None

    def pause(self) -> None:
        with self._lock:
            if self._frozen is None:
                self._frozen = time.time() + self._offset

    def resume(self) -> None:
        """Run again from the paused instant (no jump)."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def set(self, epoch: float) -> None:
        """Jump to ``epoch`` (forward only), keeping the paused/running state."""
        self.advance(max(0.0, epoch - self.now()))

    def reset(self) -> None:
        with self._lock:
            self._offset, self._frozen = 0.0, None

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now(), "paused": self.paused, "offset": self.now() - time.time()}
