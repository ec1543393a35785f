"""The simulated judges: what a grader deployment answers, in each published format.

A judge grades by the ticket's reference label (computed from ``input``), so its verdict is
exactly predictable: a pointwise answer is right when its label is the reference label; in a
pair, the side whose label is right wins, and two right (or two wrong) labels tie. What
varies is only how the verdict is written. Each format has a few realistic templates (a
paragraph of reasoning first, Markdown, the verdict mid-sentence, text after it, a format
quoted before the final verdict), one chosen per call by a seeded hash of its inputs.

=============  ===============================  ==========================================
format         pointwise (right / wrong)        pairwise
=============  ===============================  ==========================================
``json``       ``{"score": 1|0, …}`` (0-1)      ``{"winner": "A"|"B"|"tie", …}``
``mtbench``    ``Rating: [[10]]`` / ``[[1]]``   ``[[A]]``, ``[[B]]``, ``[[C]]`` (a tie)
               (scale 1-10)
``prometheus`` ``[RESULT] 5`` / ``1`` (1-5)     ``[RESULT] A|B`` (no tie label: a tie is
                                                answered ``A``, the first position)
``score_line`` a last line ``SCORE: 1|0`` or    a last line ``WINNER: A|B|TIE``
               ``Score: 10/10|0/10`` (0-1)
``arena_hard`` as ``mtbench``                   ``[[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``,
                                                ``[[B>A]]``, ``[[B>>A]]``
``winner_line`` as ``score_line``               as ``score_line``
=============  ===============================  ==========================================

A position-biased judge answers ``A`` in every pair, in its format; a garbage judge answers
prose that names no verdict any default parser reads (a citation ``[1]``, "7 out of 10").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from runner.simulator.request import canonical_json

JudgeFormat = Literal["json", "mtbench", "prometheus", "score_line", "arena_hard", "winner_line"]
JUDGE_FORMATS: Final = ("json", "mtbench", "prometheus", "score_line", "arena_hard", "winner_line")
#: The pointwise scale each format's scores are on (``--judge-scale``; None: 0-1 as read).
FORMAT_SCALES: Final[Mapping[str, str | None]] = {
    "json": None, "mtbench": "1-10", "prometheus": "1-5", "score_line": None,
    "arena_hard": "1-10", "winner_line": None,
}  # fmt: skip

Pick = Literal["A", "B", "tie"]

_GARBAGE: Final = (
    "Both answers have merits; I cannot decide.",
    "The response routes the ticket as the policy says [1], and the FAQ agrees [2]. "
    "I would give it a 7 out of 10, maybe an 8 on a good day.",
    "Assistant A is clearer, though Assistant B is more complete. It is hard to call, "
    "and either could be preferred depending on what the customer needs.",
)


def _index(salt: str, inputs: Mapping[str, Any], count: int) -> int:
    """A seeded choice among ``count`` templates, stable for the same inputs."""
    from runner.simulator.model import unit_hash  # model imports this module

    return int(unit_hash(salt, canonical_json(inputs)) * count)


def _choose(
    templates: tuple[Callable[..., str], ...], inputs: Mapping[str, Any]
) -> Callable[..., str]:
    return templates[_index("judge-template", inputs, len(templates))]


def garbage_answer(inputs: Mapping[str, Any]) -> str:
    """An answer without a verdict (the first template when ``inputs`` is empty)."""
    return _GARBAGE[_index("garbage", inputs, len(_GARBAGE))] if inputs else _GARBAGE[0]


# ------------------------------------------------------------------------------ pointwise


def _pw_json(right: bool, label: str, truth: str) -> str:
    return json.dumps({"score": int(right), "reason": f"the right label is {truth}"})


def _pw_json_fenced(right: bool, label: str, truth: str) -> str:
    verdict = "matches" if right else "does not match"
    body = json.dumps({"explanation": f"{label} {verdict} {truth}", "score": int(right)}, indent=2)
    return (
        f"I compared the routing label with the ticket. The answer says {label!r}, and the "
        f"ticket is about {truth}.\n\n```json\n{body}\n```\n\nLet me know if you need more."
    )


def _pw_json_rationale(right: bool, label: str, truth: str) -> str:
    obj = {"rationale": f"expected {truth}, got {label}", "score": 1.0 if right else 0.0}
    return f"Here is my grading: {json.dumps(obj)} (scored on the rubric's 0-1 scale)."


def _mt_plain(right: bool, label: str, truth: str) -> str:
    words = "routes it correctly" if right else "routes it to the wrong team"
    return (
        f"The assistant labels the ticket as {label}. The ticket is about {truth}, so the "
        f"response {words}. It is short, but a label needs no more. "
        f"Rating: [[{10 if right else 1}]]"
    )


def _mt_markdown(right: bool, label: str, truth: str) -> str:
    return (
        "**Evaluation.** The question asks for one routing label.\n\n"
        f"- The answer: *{label}*\n- The reference: *{truth}*\n\n"
        f"**Rating:** [[{'10.0' if right else '1.0'}]]"
    )


def _mt_quoted_first(right: bool, label: str, truth: str) -> str:
    final = "[[10]]" if right else "[[1]]"
    return (
        f"The answer is {label}; the right team is {truth}. A [[5]] would be too generous for a "
        f"wrong label and too harsh for a right one, so I settle on {final} for this response. "
        "The format was followed."
    )


def _prom_plain(right: bool, label: str, truth: str) -> str:
    return (
        f"Feedback: The response labels the ticket {label}, while the rubric's reference is "
        f"{truth}. {'It fully meets' if right else 'It fails'} the criteria. [RESULT] "
        f"{5 if right else 1}"
    )


def _prom_trailing(right: bool, label: str, truth: str) -> str:
    return (
        f"Feedback: Judged on correctness of routing alone, {label} against {truth}.\n"
        f"[RESULT] {5 if right else 1}\n\nThis judgement considered only the label."
    )


def _prom_quoted(right: bool, label: str, truth: str) -> str:
    return (
        "Feedback: A partial answer would earn [RESULT] 3 under this rubric; this one is not "
        f"partial, it is {'right' if right else 'wrong'} ({label} for {truth}). "
        f"So the overall score is [RESULT] {5 if right else 1}"
    )


def _line_upper(right: bool, label: str, truth: str) -> str:
    return f"The label should be {truth}; the answer says {label}.\nSCORE: {int(right)}"


def _line_markdown(right: bool, label: str, truth: str) -> str:
    return (
        f"### Grading\nThe answer routes to **{label}**; the ticket belongs to **{truth}**.\n\n"
        f"**Score:** {'10/10' if right else '0/10'}"
    )


def _line_rating(right: bool, label: str, truth: str) -> str:
    return (
        f"Expected {truth}. Got {label}. A score of 1 means right, 0 wrong.\n\n"
        f"Rating: {1 if right else 0}.\n"
    )


_POINTWISE: Final[Mapping[str, tuple[Callable[[bool, str, str], str], ...]]] = {
    "json": (_pw_json, _pw_json_fenced, _pw_json_rationale),
    "mtbench": (_mt_plain, _mt_markdown, _mt_quoted_first),
    "prometheus": (_prom_plain, _prom_trailing, _prom_quoted),
    "score_line": (_line_upper, _line_markdown, _line_rating),
}
_POINTWISE_AS: Final = {"arena_hard": "mtbench", "winner_line": "score_line"}


def pointwise_answer(
    fmt: str, right: bool, label: str, truth: str, inputs: Mapping[str, Any]
) -> str:
    """A pointwise grade in ``fmt``: right or wrong, written in one of its templates."""
    templates = _POINTWISE[_POINTWISE_AS.get(fmt, fmt)]
    return _choose(templates, inputs)(right, label, truth)


# ------------------------------------------------------------------------------- pairwise


def _pair_json(pick: Pick, truth: str) -> str:
    return json.dumps({"winner": pick, "reason": f"the right label is {truth}"})


def _pair_json_fenced(pick: Pick, truth: str) -> str:
    body = json.dumps({"reason": f"only the right label ({truth}) counts", "winner": pick})
    return f"Comparing both routing labels with the ticket.\n```json\n{body}\n```"


_MT: Final = {"A": "[[A]]", "B": "[[B]]", "tie": "[[C]]"}


def _mt_final(pick: Pick, truth: str) -> str:
    return (
        f"Assistant A and Assistant B both give one label; the ticket is about {truth}. "
        f"Neither adds detail the user did not ask for.\n\nFinal Verdict: {_MT[pick]}"
    )


def _mt_mid_sentence(pick: Pick, truth: str) -> str:
    return (
        f"Judged on routing to {truth} alone, and ignoring length, "
        f"therefore, my final verdict is: {_MT[pick]}."
    )


def _mt_reconsidered(pick: Pick, truth: str) -> str:
    tail = " for a tie." if pick == "tie" else ", on reflection."
    return (
        f"At first glance [[A]] looked better because it reads more fluently, but the task is "
        f"routing to {truth}. Final verdict: {_MT[pick]}{tail}"
    )


def _arena(pick: Pick, strong: bool) -> str:
    if pick == "tie":
        return "[[A=B]]"
    other = "B" if pick == "A" else "A"
    return f"[[{pick}{'>>' if strong else '>'}{other}]]"


def _arena_strong(pick: Pick, truth: str) -> str:
    return (
        "My own answer: the ticket goes to the team it is about.\n\n"
        f"Assistant A and Assistant B are compared with that answer ({truth}). One label is "
        f"wrong and misroutes the customer entirely.\n\nMy final verdict is {_arena(pick, True)}"
    )


def _arena_slight(pick: Pick, truth: str) -> str:
    return (
        f"**Comparison.** Against my reference ({truth}) the better answer is only somewhat "
        f"better overall. My final verdict is: {_arena(pick, False)}.\n\n"
        "Both answers were concise."
    )


def _arena_quoted(pick: Pick, truth: str) -> str:
    return (
        "I would not go as far as [[A>>B]] on style alone. Correctness decides: the reference "
        f"is {truth}. My final verdict is {_arena(pick, True)}, as explained."
    )


def _prom_pair(pick: Pick, truth: str) -> str:
    side = "A" if pick == "tie" else pick  # no tie label: a forced choice of the first
    return (
        f"Feedback: Response {side} follows the rubric better: the ticket is about {truth}. "
        f"[RESULT] {side}"
    )


def _prom_pair_quoted(pick: Pick, truth: str) -> str:
    side = "A" if pick == "tie" else pick
    return f'Feedback: Weighing both against {truth}.\n[RESULT] "{side}"\n'


def _winner_line(pick: Pick, truth: str) -> str:
    return f"The right label is {truth}.\nWINNER: {pick.upper()}"


def _winner_markdown(pick: Pick, truth: str) -> str:
    return f"Both responses were read against {truth}.\n\n**Winner:** {pick}."


_PAIRWISE: Final[Mapping[str, tuple[Callable[[Pick, str], str], ...]]] = {
    "json": (_pair_json, _pair_json_fenced),
    "mtbench": (_mt_final, _mt_mid_sentence, _mt_reconsidered),
    "arena_hard": (_arena_strong, _arena_slight, _arena_quoted),
    "prometheus": (_prom_pair, _prom_pair_quoted),
    "winner_line": (_winner_line, _winner_markdown),
}
_PAIRWISE_AS: Final = {"score_line": "winner_line"}


def pairwise_answer(fmt: str, pick: Pick, truth: str, inputs: Mapping[str, Any]) -> str:
    """A pairwise verdict in ``fmt`` for ``pick``, written in one of its templates."""
    templates = _PAIRWISE[_PAIRWISE_AS.get(fmt, fmt)]
    return _choose(templates, inputs)(pick, truth)
