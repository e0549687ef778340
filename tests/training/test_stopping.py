"""A stop request: signals become a flag while a run is inside it, and only then."""

from __future__ import annotations

import signal
import threading

from qa.training.stopping import StopRequest


def test_a_signal_inside_sets_the_flag_and_the_handlers_come_back_after() -> None:
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: Ray, say, installs its own
    before_int = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        assert not stop.requested
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested
        # a second signal is no longer caught: the previous handler is back for it
        assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGINT) == before_int


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[bool] = []

    def run() -> None:
        with StopRequest() as stop:
            seen.append(signal.getsignal(signal.SIGTERM) == stop._handle)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [False]
