"""Reading a judge's answer: pure functions, no I/O.

A pointwise judge answers with the first JSON object holding a numeric ``score`` (and an
optional ``reason``), or else a last line ``SCORE: <number>``. A pairwise judge answers with the
first JSON object holding ``winner`` (``A``, ``B`` or ``tie``, any case), or else a last line
``WINNER: A|B|TIE``. Anything else is a judge error: counted, never a crash.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from runner.errors import ConfigError

Winner = Literal["A", "B", "tie"]
Verdict = Literal["win", "loss", "tie"]

_SCORE_LINE: Final = re.compile(r"^\s*SCORE\s*:\s*([-+]?\d+(?:\.\d+)?)\s*$", re.IGNORECASE)
_WINNER_LINE: Final = re.compile(r"^\s*WINNER\s*:\s*(A|B|TIE)\s*\.?\s*$", re.IGNORECASE)
_DECODER: Final = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """``DEPLOYMENT:VARIANT`` of a judge deployment, as given on the command line."""

    deployment: str
    variant: str

    @classmethod
    def parse(cls, text: str, option: str) -> JudgeSpec:
        deployment, sep, variant = text.rpartition(":")
        if not sep or not deployment.strip() or not variant.strip():
            raise ConfigError(f"{option} {text!r} is not DEPLOYMENT:VARIANT (e.g. grader:v1)")
        return cls(deployment.strip(), variant.strip())

    def __str__(self) -> str:
        return f"{self.deployment}:{self.variant}"


def parse_scale(text: str | None) -> tuple[float, float] | None:
    """``--judge-scale 1-10`` as ``(1.0, 10.0)``; None keeps scores as they are, in [0, 1]."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*([-+]?\d+(?:\.\d+)?)\s*-\s*([-+]?\d+(?:\.\d+)?)\s*", text)
    if not match or float(match[1]) >= float(match[2]):
        raise ConfigError(f"--judge-scale {text!r} is not MIN-MAX with MIN < MAX (e.g. 1-10)")
    return float(match[1]), float(match[2])


def _objects(answer: str) -> list[dict[str, Any]]:
    """Every JSON object found in ``answer``, in order (text around them is ignored)."""
    found: list[dict[str, Any]] = []
    start = answer.find("{")
    while start >= 0:
        try:
            value, end = _DECODER.raw_decode(answer, start)
        except ValueError:
            start = answer.find("{", start + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        start = answer.find("{", end)
    return found


def _last_line(answer: str) -> str:
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _reason(obj: dict[str, Any]) -> str | None:
    reason = obj.get("reason")
    return None if reason is None else str(reason)


@dataclass(frozen=True, slots=True)
class Score:
    """A pointwise judgement: a score in [0, 1] and the judge's reason, or an error."""

    value: float | None
    reason: str | None = None
    error: str | None = None


def parse_score(answer: str, scale: tuple[float, float] | None = None) -> Score:
    """The score in ``answer``, mapped from ``scale`` onto [0, 1] (or taken as it is)."""
    raw: float | None = None
    reason: str | None = None
    for obj in _objects(answer):
        value = obj.get("score")
        if isinstance(value, int | float) and not isinstance(value, bool):
            raw, reason = float(value), _reason(obj)
            break
    if raw is None:
        match = _SCORE_LINE.match(_last_line(answer))
        if match is None:
            return Score(None, error="no JSON object with a numeric score, no last line SCORE: N")
        raw = float(match[1])
    low, high = scale if scale is not None else (0.0, 1.0)
    if math.isnan(raw) or not low <= raw <= high:
        return Score(None, reason, f"score {raw:g} is outside {low:g}-{high:g}")
    return Score((raw - low) / (high - low), reason)


@dataclass(frozen=True, slots=True)
class Preference:
    """A pairwise judgement of one order: which side won, and why, or an error."""

    winner: Winner | None
    reason: str | None = None
    error: str | None = None


def parse_winner(answer: str) -> Preference:
    """The winner in ``answer``: ``A``, ``B`` or ``tie``."""
    for obj in _objects(answer):
        value = obj.get("winner")
        if isinstance(value, str) and value.strip().upper() in ("A", "B", "TIE"):
            return Preference(_winner(value), _reason(obj))
    match = _WINNER_LINE.match(_last_line(answer))
    if match is None:
        return Preference(None, error="no JSON object with winner A, B or tie; no WINNER: line")
    return Preference(_winner(match[1]))


def _winner(text: str) -> Winner:
    upper = text.strip().upper()
    return "tie" if upper == "TIE" else "A" if upper == "A" else "B"


def combine(baseline_first: Winner | None, candidate_first: Winner | None) -> tuple[Verdict, bool]:
    """The candidate's verdict from both orders, and whether the two orders agreed.

    ``baseline_first`` judged ``output_a`` = baseline, ``output_b`` = candidate;
    ``candidate_first`` the swapped order. A side wins only when both orders pick it;
    any disagreement (a position bias, a missing judgement) is a tie.
    """
    first = {"A": "baseline", "B": "candidate", "tie": "tie"}.get(baseline_first or "")
    second = {"A": "candidate", "B": "baseline", "tie": "tie"}.get(candidate_first or "")
    agreed = first is not None and first == second
    if not agreed or first == "tie":
        return "tie", agreed
    return ("win" if first == "candidate" else "loss"), True
