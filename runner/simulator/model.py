"""The simulated model: a deterministic ticket classifier, its mistakes, latency and usage.

Nothing here does I/O. The answer, whether it is wrong and how long it takes are pure
functions of the config's ``seed`` and of the request's call key
(:mod:`runner.simulator.request`), so tests can predict exactly what the server will say.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from runner.simulator import judges
from runner.simulator.config import SimulatorConfig, UsageShape
from runner.simulator.request import CallKey, canonical_json

#: The ticket categories the simulated model answers, in keyword priority order.
LABELS: Final = ("billing", "account", "technical", "shipping", "other")

_KEYWORDS: Final = (
    ("billing", re.compile(r"\b(?:refund|invoice|charg|bill|payment|paid|price|subscription)")),
    ("account", re.compile(r"\b(?:password|login|log in|sign in|2fa|two.factor|account|locked)")),
    ("technical", re.compile(r"\b(?:crash|error|bug|broken|freez|exception|not working)")),
    ("shipping", re.compile(r"\b(?:ship|deliver|package|parcel|tracking|courier)")),
)

#: The thinking the simulated model streams before its answer.
REASONING_PIECES: Final = ("Reading", " the", " ticket", " and", " matching", " keywords", ".")


def reference_answer(inputs: Mapping[str, Any]) -> str:
    """The correct label of a support ticket: the first category whose keywords appear.

    Every string value of ``inputs`` (nested ones included) is searched, case-insensitively,
    for word-starts: billing (refund, invoice, charge …), then account (password, login, 2fa …),
    then technical (crash, error, bug …), then shipping (ship, delivery, package …); else
    ``other``.
    """
    text = " ".join(_strings(inputs)).lower()
    for label, pattern in _KEYWORDS:
        if pattern.search(text):
            return label
    return "other"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def unit_hash(*parts: object) -> float:
    """A seeded, stable, uniform-looking number in [0, 1) from the parts' text."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def is_wrong(seed: int, variant: str, inputs: Mapping[str, Any] | str, wrong_rate: float) -> bool:
    """Whether ``variant`` answers a wrong label for these inputs (exactly, not on average).

    True on the rows whose seeded hash of (seed, variant, canonical inputs JSON) falls below
    ``wrong_rate``; ``inputs`` may be given as its canonical JSON already.
    """
    if wrong_rate <= 0:
        return False
    text = inputs if isinstance(inputs, str) else canonical_json(inputs)
    return unit_hash(seed, "wrong", variant, text) < wrong_rate


def model_response(
    config: SimulatorConfig,
    variant: str | None,
    inputs: Mapping[str, Any],
    inputs_json: str | None = None,
    deployment: str | None = None,
) -> str:
    """The full answer text the simulator gives this variant (of ``deployment``, which may be
    a judge deployment, see :attr:`SimulatorConfig.judges`) for these inputs.

    ``inputs_json``, the canonical JSON of ``inputs``, saves computing it again.
    """
    profile = config.profile(variant, deployment)
    if profile.judge is not None:
        return judge_response(profile.judge, inputs, profile.judge_format)
    label = reference_answer(inputs)
    if profile.wrong_rate > 0:
        text = canonical_json(inputs) if inputs_json is None else inputs_json
        if is_wrong(config.seed, variant or "", text, profile.wrong_rate):
            others = [other for other in LABELS if other != label]
            label = others[int(unit_hash(config.seed, "label", variant, text) * len(others))]
    if profile.verbose:
        return f"{label}. This ticket is about {label}, so I routed it to the {label} team."
    return label


def label_of(output: Any) -> str:
    """The label an answer gives: its first word (a verbose answer starts ``label.``)."""
    text = str(output or "").strip().lower()
    return re.split(r"[^a-z]+", text, maxsplit=1)[0] if text else ""


def judge_response(kind: str, inputs: Mapping[str, Any], fmt: str | None = None) -> str:
    """A judge deployment's answer. It grades by the ticket's reference label (computed from
    ``input``), so its verdicts are exactly predictable: an answer is right when its label is
    the reference label.

    ``kind`` is a :data:`~runner.simulator.config.JUDGE_KINDS` name (``grader`` answers a pair
    when the inputs hold ``output_a``, else one answer); ``fmt`` the published format it writes
    (:mod:`runner.simulator.judges`). Without ``fmt`` the answers are the runner's own JSON
    (and a last line ``SCORE: N`` for ``pointwise_text``), as they always were.
    """
    truth = reference_answer({"input": inputs.get("input", "")})
    if kind == "garbage":
        return judges.garbage_answer(inputs) if fmt is not None else judges.garbage_answer({})
    if kind == "grader":
        kind = "pairwise" if "output_a" in inputs else "pointwise"
    if kind in ("pointwise", "pointwise_text"):
        label = label_of(inputs.get("output"))
        right = label == truth
        if fmt is not None:
            return judges.pointwise_answer(fmt, right, label, truth, inputs)
        if kind == "pointwise_text":
            return f"The label should be {truth}.\nSCORE: {int(right)}"
        return json.dumps({"score": int(right), "reason": f"the right label is {truth}"})
    if kind == "pairwise_biased":
        if fmt is not None:
            return judges.pairwise_answer(fmt, "A", truth, inputs)
        return json.dumps({"winner": "A", "reason": "the first answer reads better"})
    a = label_of(inputs.get("output_a")) == truth
    b = label_of(inputs.get("output_b")) == truth
    winner: judges.Pick = "A" if a and not b else "B" if b and not a else "tie"
    if fmt is not None:
        return judges.pairwise_answer(fmt, winner, truth, inputs)
    return json.dumps({"winner": winner, "reason": f"the right label is {truth}"})


def response_pieces(text: str, size: int = 4) -> list[str]:
    """The answer split into streamed pieces; they concatenate back to ``text``."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def usage(shape: UsageShape, inputs_json: str, response: str, duration: float) -> dict[str, Any]:
    """Token counts for an answer, in the nested (docs) or flat (SDK schema) shape."""
    prompt = 16 + len(inputs_json) // 4
    reasoning = 8 * len(REASONING_PIECES)
    completion = math.ceil(len(response) / 4) + reasoning
    if shape == "flat":
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return {
        "duration": round(duration, 3),
        "prompt_tokens": {"total_tokens": prompt, "cached_tokens": 0},
        "completion_tokens": {"total_tokens": completion, "reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def latency_for(config: SimulatorConfig, key: CallKey, attempt: int) -> float:
    """Seconds this attempt takes: (``latency_ms`` + seeded jitter) × the variant's factor."""
    millis = config.latency_ms
    if config.jitter_ms:
        millis += config.jitter_ms * unit_hash(config.seed, "jitter", *key, attempt)
    return millis * config.profile(key.variant, key.deployment).latency_factor / 1000.0
