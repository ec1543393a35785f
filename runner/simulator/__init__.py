"""The built-in fake of the Fetch Hive invoke API, served on 127.0.0.1 by aiohttp.

It speaks the wire contract of ``docs/fetchhive-protocol.md`` (JSON and server-sent events),
answers like a deterministic ticket classifier (:func:`reference_answer`), injects seeded,
reproducible faults and plan limits, and records what it was asked (:class:`SimulatorStats`).

Run it in-process with ``with SimulatorServer(config) as sim:`` (a background thread with its
own event loop), or in the foreground with :func:`serve_forever` (``runner simulate``). A
running :class:`SimulatorServer` can be driven from the test's thread: ``go_down()`` /
``come_back()`` (an outage: connections refused, then served again on the same port) and
``hang(True/False)`` (requests accepted and never answered). ``SimulatorConfig.max_in_flight``
caps concurrency with 429s, and ``deployments`` makes unknown deployments and variants 404.
``SimulatorConfig.judges`` makes named deployments answer as judges, in a published format
(``judges={"grader": "mtbench"}``; ``runner simulate --judge-deployment grader=mtbench``).

The modules, from the pure core out:

    config     SimulatorConfig, VariantProfile: what to serve, checked when built
    request    the call key of a request, and what is wrong with its body
    model      the answer, whether it is wrong, its latency and usage (seeded, pure)
    judges     what a judge deployment answers, in each published format (seeded, pure)
    faults     which attempt of which call key gets which fault (seeded, pure)
    wire       the bodies: JSON answers, server-sent events, error bodies
    stats      what was asked and answered (ReceivedRequest, SimulatorStats)
    app        the aiohttp handlers that serve the above
    server     SimulatorServer (a background thread, outage and hang controls), serve_forever
"""

from runner.simulator.app import INVOKE_PATHS
from runner.simulator.config import (
    FAULT_KINDS,
    PERMANENT_KINDS,
    SimulatorConfig,
    SimulatorConfigError,
    VariantProfile,
    judge_profile,
)
from runner.simulator.faults import fault_for
from runner.simulator.judges import FORMAT_SCALES, JUDGE_FORMATS
from runner.simulator.model import LABELS, is_wrong, latency_for, model_response, reference_answer
from runner.simulator.request import CallKey, call_key
from runner.simulator.server import SimulatorServer, serve_forever
from runner.simulator.stats import ReceivedRequest, SimulatorStats

__all__ = [
    "FAULT_KINDS",
    "FORMAT_SCALES",
    "INVOKE_PATHS",
    "JUDGE_FORMATS",
    "LABELS",
    "PERMANENT_KINDS",
    "CallKey",
    "ReceivedRequest",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorServer",
    "SimulatorStats",
    "VariantProfile",
    "call_key",
    "fault_for",
    "is_wrong",
    "judge_profile",
    "latency_for",
    "model_response",
    "reference_answer",
    "serve_forever",
]
