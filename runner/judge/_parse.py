"""Reading a judge's answer: pure functions, no I/O.

Teams paste the grader prompts of the published protocols into their judge deployments, so
the formats those prompts ask for are read by default. Of all the verdicts an answer holds, in
any of these formats, the LAST counts: a judge's reasoning may quote a verdict, of its own
format or another, before giving its own ("a [[5]] would be too generous … Rating: [[3]]" is a
3, and so is ``a lenient grader says {"score": 5} … Rating: [[3]]``). A verdict's place
is where it ends, so a verdict quoted inside a JSON object (in its ``reason``, say) belongs to
that object and never comes after it.

A pointwise judge (:func:`parse_score`) may answer with:

1. a JSON object with a numeric ``score``, bare or in a fenced ```json block (promptfoo
   ``llm-rubric``); its ``reason`` (or ``explanation`` / ``rationale``) is kept;
2. ``[[n]]``, decimals allowed (MT-Bench single grading: ``Rating: [[5]]``);
3. ``[RESULT] n`` (Prometheus absolute grading);
4. a last line ``SCORE: n``, ``Score: n``, ``Rating: n`` or ``Grade: n`` (Markdown bold
   allowed), with an optional denominator: ``Score: 7/10``. Being the last line, it comes
   after any other verdict; a score line that is not the last line is not read.

FastChat's fallback, a single-bracket ``[n]``, is never read: it takes citations for scores.

The raw value is mapped onto [0, 1] by the scale: ``--judge-scale`` when given; else, when the
score line has a denominator, 0 to that denominator (``Score: 7/10`` is 0.7); else the score
is taken as it is and must lie in 0-1. A score outside the scale is an error that names the
scale (the last verdict counts even then: an earlier one is never read instead);
:func:`scale_hint` suggests the ``--judge-scale`` a set of raw scores fits.

A pairwise judge (:func:`parse_winner`) may answer with:

1. a JSON object with ``winner`` ``A``, ``B`` or ``tie`` (any case);
2. a verdict in double brackets: MT-Bench's ``[[A]]``, ``[[B]]``, ``[[C]]`` (C is a tie),
   Arena-Hard's ``[[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]`` (the strength,
   ``strong`` or ``slight``, is kept), or MT-Bench's two ratings ``[[8, 6]]`` (within 0.1 is a
   tie);
3. ``[RESULT] A`` or ``[RESULT] B`` (Prometheus relative grading);
4. a last line ``WINNER: A|B|TIE``.

A team's own format is a regular expression (:func:`compile_pattern`): the first capture group
of its last match is the score, or the winner (``A``, ``B``, or a tie word: tie, C, draw,
equal, ``=``; any case). A pattern replaces the default formats.

Anything else is a judge error: counted, never a crash, and never a tie.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from runner.errors import ConfigError

Winner = Literal["A", "B", "tie"]
Verdict = Literal["win", "loss", "tie"]
Strength = Literal["strong", "slight"]

_NUMBER: Final = r"\d+(?:\.\d+)?"
# Markdown around a label or a value: bold, italics, a quote or list marker, a heading.
_DECOR: Final = r"[\s>*_#-]*"
_MTBENCH_SCORE: Final = re.compile(rf"\[\[\s*({_NUMBER})\s*\]\]")
_PROMETHEUS_SCORE: Final = re.compile(rf"\[RESULT\][\s:*]*({_NUMBER})", re.IGNORECASE)
_SCORE_LINE: Final = re.compile(
    rf"^{_DECOR}(?:final\s+|overall\s+)?(?:score|rating|grade)[\s*_]*:[\s*_]*"
    rf"([-+]?{_NUMBER})\s*(?:/\s*({_NUMBER}))?[\s*_.]*$",
    re.IGNORECASE,
)
_BRACKET_VERDICT: Final = re.compile(
    r"\[\[\s*([ABC](?:\s*(?:>>|<<|>|<|=)\s*[AB])?)\s*\]\]", re.IGNORECASE
)
_TWO_RATINGS: Final = re.compile(rf"\[\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]\]")
_PROMETHEUS_WINNER: Final = re.compile(r"\[RESULT\][\s:*\"'(]*([AB])\b", re.IGNORECASE)
_WINNER_LINE: Final = re.compile(
    rf"^{_DECOR}winner[\s*_]*:[\s*_]*(A|B|TIE)[\s*_.]*$", re.IGNORECASE
)
_TIE_WORDS: Final = frozenset({"tie", "c", "draw", "equal", "="})
_REASON_KEYS: Final = ("reason", "explanation", "rationale")
#: Arena-Hard's verdicts (spaces removed, upper case) as (winner, strength).
_ARENA: Final[dict[str, tuple[Winner, Strength | None]]] = {
    "A": ("A", None), "B": ("B", None), "C": ("tie", None),
    "A>>B": ("A", "strong"), "B<<A": ("A", "strong"),
    "A>B": ("A", "slight"), "B<A": ("A", "slight"),
    "B>>A": ("B", "strong"), "A<<B": ("B", "strong"),
    "B>A": ("B", "slight"), "A<B": ("B", "slight"),
    "A=B": ("tie", None), "B=A": ("tie", None),
}  # fmt: skip
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


def compile_pattern(text: str | None, option: str) -> re.Pattern[str] | None:
    """``--judge-pattern`` / ``--pairwise-pattern`` compiled, or None when not given.

    The pattern is compiled as given (use inline flags such as ``(?im)``); it must hold a
    capture group, whose text in the last match is the verdict. Raises :class:`ConfigError`
    naming ``option`` when it does not compile or has no group.
    """
    if text is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise ConfigError(f"{option} {text!r} is not a valid regular expression: {exc}") from exc
    if pattern.groups < 1:
        raise ConfigError(
            f"{option} {text!r} has no capture group: put the verdict in ( ), "
            r"e.g. 'Verdict: (\w+)'"
        )
    return pattern


# --------------------------------------------------------------------------------- helpers


def _objects(answer: str) -> list[tuple[int, dict[str, Any]]]:
    """Every JSON object in ``answer`` (text around them ignored), with where it ends."""
    found: list[tuple[int, dict[str, Any]]] = []
    start = answer.find("{")
    while start >= 0:
        try:
            value, end = _DECODER.raw_decode(answer, start)
        except ValueError:
            start = answer.find("{", start + 1)
            continue
        if isinstance(value, dict):
            found.append((end, value))
        start = answer.find("{", end)
    return found


def _last_line(answer: str) -> str:
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _reason(obj: dict[str, Any]) -> str | None:
    for key in _REASON_KEYS:
        if obj.get(key) is not None:
            return str(obj[key])
    return None


def _last(pattern: re.Pattern[str], answer: str) -> re.Match[str] | None:
    """The last match of ``pattern`` whose first group took part in it."""
    found = None
    for match in pattern.finditer(answer):
        if match.group(1) is not None:
            found = match
    return found


# ------------------------------------------------------------------------------- pointwise


@dataclass(frozen=True, slots=True)
class Score:
    """A pointwise judgement: a score in [0, 1] and the judge's reason, or an error.

    ``raw`` is the number the judge wrote, before the scale (also when it fell outside the
    scale), so a caller can see which scale a judge answers on (:func:`scale_hint`).
    """

    value: float | None
    reason: str | None = None
    error: str | None = None
    raw: float | None = None


def parse_score(
    answer: str,
    scale: tuple[float, float] | None = None,
    pattern: re.Pattern[str] | None = None,
) -> Score:
    """The score in ``answer`` (module docstring), mapped from its scale onto [0, 1]."""
    if pattern is not None:
        return _pattern_score(answer, scale, pattern)
    line = _SCORE_LINE.match(_last_line(answer))
    if line is not None:  # the last line: no other verdict ends after it
        return _line_score(line, scale)
    # (where the verdict ends, raw score, reason) for every verdict in every format
    found = [
        (end, score, _reason(obj))
        for end, obj in _objects(answer)
        if (score := _json_number(obj.get("score"))) is not None
    ]
    found += [
        (match.end(), float(match[1]), None)
        for default in (_MTBENCH_SCORE, _PROMETHEUS_SCORE)
        for match in default.finditer(answer)
    ]
    if not found:
        return Score(
            None,
            error="no score: no JSON object with a numeric score, no [[n]], no [RESULT] n, "
            "no last line SCORE: n",
        )
    _, raw, reason = max(found, key=lambda verdict: verdict[0])
    return _scaled(raw, scale, reason)


def _json_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _line_score(line: re.Match[str], scale: tuple[float, float] | None) -> Score:
    raw = float(line[1])
    if scale is None and line[2] is not None:
        denominator = float(line[2])
        if denominator <= 0:
            return Score(None, error=f"score {line[1]}/{line[2]} has no scale", raw=raw)
        scale = (0.0, denominator)
    return _scaled(raw, scale)


def _pattern_score(
    answer: str, scale: tuple[float, float] | None, pattern: re.Pattern[str]
) -> Score:
    match = _last(pattern, answer)
    if match is None:
        return Score(None, error=f"no match of the pattern {pattern.pattern!r}")
    text = match[1].strip()
    try:
        raw = float(text)
    except ValueError:
        return Score(None, error=f"the pattern read {text[:40]!r}, not a number")
    return _scaled(raw, scale)


def _scaled(raw: float, scale: tuple[float, float] | None, reason: str | None = None) -> Score:
    low, high = scale if scale is not None else (0.0, 1.0)
    if math.isnan(raw) or not low <= raw <= high:
        return Score(None, reason, f"score {raw:g} is outside {low:g}-{high:g}", raw)
    return Score((raw - low) / (high - low), reason, raw=raw)


#: Scales a judge commonly answers on, in the order they are suggested.
_COMMON_SCALES: Final = ((1.0, 5.0), (1.0, 10.0), (0.0, 10.0), (0.0, 100.0))


def scale_hint(
    raw_values: Iterable[float | None], scale: tuple[float, float] | None = None
) -> str | None:
    """A hint for a forgotten ``--judge-scale``, or None.

    Given the raw scores of a judging pass (:attr:`Score.raw`), and the scale they were read
    on (None: 0-1): when some lie outside that scale and all lie within 1-5 or 1-10 (or else
    0-10, 0-100), ``"every score lies within 1-10: did you forget --judge-scale 1-10?"``.
    """
    values = [v for v in raw_values if v is not None and math.isfinite(v)]
    low, high = scale if scale is not None else (0.0, 1.0)
    if not values or all(low <= v <= high for v in values):
        return None
    for a, b in _COMMON_SCALES:
        if all(a <= v <= b for v in values):
            return f"every score lies within {a:g}-{b:g}: did you forget --judge-scale {a:g}-{b:g}?"
    return None


# -------------------------------------------------------------------------------- pairwise


@dataclass(frozen=True, slots=True)
class Preference:
    """A pairwise judgement of one order: which side won, how clearly, and why; or an error.

    ``strength`` is Arena-Hard's: ``strong`` for ``[[A>>B]]``, ``slight`` for ``[[A>B]]``;
    None for a tie or a format without one.
    """

    winner: Winner | None
    reason: str | None = None
    error: str | None = None
    strength: Strength | None = None


def parse_winner(answer: str, pattern: re.Pattern[str] | None = None) -> Preference:
    """The winner in ``answer`` (module docstring): ``A``, ``B`` or ``tie``."""
    if pattern is not None:
        return _pattern_winner(answer, pattern)
    line = _WINNER_LINE.match(_last_line(answer))
    if line is not None:  # the last line: no other verdict ends after it
        return Preference(_winner(line[1]))
    # (where the verdict ends, the verdict) for every verdict in every format
    found = [
        (end, Preference(_winner(value), _reason(obj)))
        for end, obj in _objects(answer)
        if isinstance(value := obj.get("winner"), str)
        and value.strip().upper() in ("A", "B", "TIE")
    ]
    found += _bracket_verdicts(answer)
    found += [
        (match.end(), Preference(_winner(match[1])))
        for match in _PROMETHEUS_WINNER.finditer(answer)
    ]
    if not found:
        return Preference(
            None,
            error="no winner: no JSON object with winner A, B or tie, no [[A]] / [[A>B]], "
            "no [RESULT] A, no last line WINNER: A|B|TIE",
        )
    return max(found, key=lambda verdict: verdict[0])[1]


def _bracket_verdicts(answer: str) -> list[tuple[int, Preference]]:
    """Each double-bracket verdict (a letter, Arena-Hard's, two ratings) and where it ends."""
    found: list[tuple[int, Preference]] = []
    for match in _BRACKET_VERDICT.finditer(answer):
        read = _ARENA.get(re.sub(r"\s+", "", match[1]).upper())
        if read is not None:
            found.append((match.end(), Preference(read[0], strength=read[1])))
    for match in _TWO_RATINGS.finditer(answer):
        a, b = float(match[1]), float(match[2])
        winner: Winner = "tie" if abs(a - b) <= 0.1 else "A" if a > b else "B"
        found.append((match.end(), Preference(winner)))
    return found


def _pattern_winner(answer: str, pattern: re.Pattern[str]) -> Preference:
    match = _last(pattern, answer)
    if match is None:
        return Preference(None, error=f"no match of the pattern {pattern.pattern!r}")
    word = match[1].strip().lower()
    if word in ("a", "b"):
        return Preference(_winner(word))
    if word in _TIE_WORDS:
        return Preference("tie")
    return Preference(
        None,
        error=f"the pattern read {word[:40]!r}, not A, B or a tie word (tie, C, draw, equal, =)",
    )


def _winner(text: str) -> Winner:
    upper = text.strip().upper()
    return "tie" if upper == "TIE" else "A" if upper == "A" else "B"


def combine(
    baseline_first: Winner | None, candidate_first: Winner | None
) -> tuple[Verdict | None, bool | None]:
    """The candidate's verdict from both orders, and whether the two orders agreed.

    ``baseline_first`` judged ``output_a`` = baseline, ``output_b`` = candidate;
    ``candidate_first`` the swapped order. A side wins only when both orders pick it; two
    read orders that disagree (a position bias) are a tie. An order without a winner (its
    call failed or its answer was not read) gives no verdict at all, ``(None, None)``: an
    unread verdict is an error, never a tie.
    """
    if baseline_first is None or candidate_first is None:
        return None, None
    first = {"A": "baseline", "B": "candidate", "tie": "tie"}[baseline_first]
    second = {"A": "candidate", "B": "baseline", "tie": "tie"}[candidate_first]
    if first != second:
        return "tie", False
    if first == "tie":
        return "tie", True
    return ("win" if first == "candidate" else "loss"), True


def combine_strength(
    verdict: Verdict | None, baseline_first: Strength | None, candidate_first: Strength | None
) -> Strength | None:
    """How clearly a win or loss was won: ``strong`` when both orders said so, ``slight``
    when either gave a weaker strength, None for a tie, no verdict, or no strength given."""
    if verdict not in ("win", "loss") or (baseline_first is None and candidate_first is None):
        return None
    return "strong" if baseline_first == candidate_first == "strong" else "slight"
