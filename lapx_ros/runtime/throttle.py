"""Rate-limited warnings: a camera that sends bad frames at 30 Hz must not flood the log,
and one kind of problem must not hide another. No ROS here: any logger with a
``warning`` method will do."""
from __future__ import annotations

import time

WARN_PERIOD = 5.0  # seconds between repeats of the same kind of warning


class WarningThrottle:
    """Logs each kind of warning at most once per period, with the count suppressed."""

    def __init__(self, logger, period: float = WARN_PERIOD):
        self._logger = logger
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self._period:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        more = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        self._logger.warning(text + (f" (and {more} more since last report)" if more else ""))
