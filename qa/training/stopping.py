"""Stop a long training run at its next step, saved, when the process is asked to stop.

A session ends with SIGTERM (and a person with Ctrl-C): dying mid-step loses everything since
the last checkpoint, up to ``checkpoint_minutes`` of CPU time; finishing the step and saving
loses nothing.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """While entered (in the main thread), SIGTERM and SIGINT set ``requested`` instead of killing
    the process; a second signal is the first one's own handler (the impatient still can kill).
    Outside the main thread, signals cannot be caught, and ``requested`` stays False."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS):
        self.signals = signals
        self.requested = False
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        log.warning("%s: stopping after this step, with a checkpoint", sig.name)
        self.requested = True
        signal.signal(sig, self._previous.get(sig, signal.SIG_DFL))  # a second one acts at once

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
