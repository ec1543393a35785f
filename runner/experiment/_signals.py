"""Ctrl-C, SIGTERM and SIGHUP in the stages after sending.

While calls are sent (the dataset's or a judge's), the sending session handles signals itself:
no new requests, a grace period for those in flight, commit (:mod:`runner.run._job`). Between and
after those sessions an experiment reads files and writes reports: :func:`stopping_on_signals`
turns the first signal into :class:`StageStopped`, raised where the stage is, so the
experiment can mark the manifest ``interrupted`` with its stage and say how to resume. A
second signal while it does that calls ``quit_now`` (the CLI exits at once).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

from runner.run import STOP_SIGNALS


class StageStopped(BaseException):
    """A stop signal arrived during a stage (a BaseException, as KeyboardInterrupt is: no
    ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stopping_on_signals(quit_now: Callable[[], None] | None) -> Iterator[None]:
    """Within the block, a stop signal raises :class:`StageStopped`; a second one calls
    ``quit_now``. The previous handlers are restored after."""
    stopped = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        if stopped:
            if quit_now is not None:
                quit_now()
            return
        stopped = True
        raise StageStopped(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
