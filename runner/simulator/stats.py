"""What the simulator records: the requests it received and what it answered.

:class:`Recorder` is written on the server's loop and read from any thread;
:class:`SimulatorStats` is its snapshot (``SimulatorServer.stats``, ``GET /_sim/stats``).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from runner.simulator.request import CallKey


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One invoke request as received; the API key itself is never kept."""

    path: str
    has_authorization: bool
    body: dict[str, Any] | None
    """The parsed JSON body, or None when it was not a JSON object."""

    @property
    def metadata(self) -> dict[str, Any] | None:
        value = self.body.get("metadata") if self.body is not None else None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class SimulatorStats:
    """A snapshot of what the simulator was asked and what it answered."""

    requests: int
    """Invoke requests received, rejected ones included."""
    served: int
    """Requests that passed auth, validation and the plan limits (what the limits count)."""
    successes: int
    """Complete answers sent (a JSON 200, or a stream up to ``[DONE]``)."""
    in_flight: int
    max_in_flight: int
    requests_per_key: dict[CallKey, int]
    """Attempts per call key (valid, known-deployment requests only)."""
    successes_per_key: dict[CallKey, int]
    faults: dict[str, int]
    """Injected faults served, by kind (transient and permanent)."""
    statuses: dict[int, int]
    """Responses by HTTP status (a reset connection has none)."""
    received: tuple[ReceivedRequest, ...]
    """The most recent requests, up to ``SimulatorConfig.record_limit``."""
    throttled: int = 0
    """429s answered because ``SimulatorConfig.max_in_flight`` requests were being answered."""
    max_answering: int = 0
    """The most requests answered at once (those refused by ``max_in_flight`` not counted)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (served by ``GET /_sim/stats``)."""
        keys = sorted(self.requests_per_key.keys() | self.successes_per_key.keys())
        return {
            "requests": self.requests,
            "served": self.served,
            "successes": self.successes,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "throttled": self.throttled,
            "max_answering": self.max_answering,
            "faults": self.faults,
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "keys": [
                {
                    **key._asdict(),
                    "requests": self.requests_per_key.get(key, 0),
                    "successes": self.successes_per_key.get(key, 0),
                }
                for key in keys
            ],
            "received": [
                {"path": r.path, "has_authorization": r.has_authorization, "body": r.body}
                for r in self.received
            ],
        }


class Recorder:
    """The live counters: written on the server's loop, readable from any thread."""

    def __init__(self, record_limit: int) -> None:
        self._lock = threading.Lock()
        self._record_limit = record_limit
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = self.served = self.successes = 0
            self.in_flight = self.max_in_flight = 0
            self.answering = self.max_answering = self.throttled = 0
            self.attempts: Counter[CallKey] = Counter()
            self.key_successes: Counter[CallKey] = Counter()
            self.faults: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.received: deque[ReceivedRequest] = deque(maxlen=self._record_limit)

    def enter(self, received: ReceivedRequest) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.received.append(received)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def admit(self, cap: int | None) -> bool:
        """Count one more request being answered, unless ``cap`` are already (then a 429)."""
        with self._lock:
            if cap is not None and self.answering >= cap:
                self.throttled += 1
                return False
            self.answering += 1
            self.max_answering = max(self.max_answering, self.answering)
            return True

    def answered(self) -> None:
        with self._lock:
            self.answering -= 1

    def attempt(self, key: CallKey) -> int:
        with self._lock:
            self.attempts[key] += 1
            return self.attempts[key]

    def serve(self) -> None:
        with self._lock:
            self.served += 1

    def success(self, key: CallKey) -> None:
        with self._lock:
            self.successes += 1
            self.key_successes[key] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def snapshot(self) -> SimulatorStats:
        with self._lock:
            return SimulatorStats(
                requests=self.requests,
                served=self.served,
                successes=self.successes,
                in_flight=self.in_flight,
                max_in_flight=self.max_in_flight,
                requests_per_key=dict(self.attempts),
                successes_per_key=dict(self.key_successes),
                faults=dict(self.faults),
                statuses=dict(self.statuses),
                received=tuple(self.received),
                throttled=self.throttled,
                max_answering=self.max_answering,
            )
