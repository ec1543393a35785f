"""The published judge formats, read as real judges write them.

Pure tables of realistic answers first (reasoning before the verdict, Markdown, the verdict
mid-sentence, text after it, a format quoted before the final verdict); then the simulator's
graders, which answer in each format, read to the right score or winner.
"""

from __future__ import annotations

import re

import pytest

from runner.errors import ConfigError
from runner.judge._parse import (
    combine_strength,
    compile_pattern,
    parse_score,
    parse_winner,
    scale_hint,
)
from runner.simulator import JUDGE_FORMATS, SimulatorConfig, judge_profile, reference_answer
from runner.simulator.judges import pairwise_answer, pointwise_answer
from runner.simulator.model import judge_response

FENCED = """I checked the answer against the reference.

```json
{
  "explanation": "The label is right but the reply is curt.",
  "score": 0.8
}
```
"""

# (answer, scale, raw score read, reason)
POINTWISE = [
    # promptfoo llm-rubric: JSON, bare or fenced, its reason kept
    ('{"reason": "correct", "pass": true, "score": 1}', None, 1.0, "correct"),
    (FENCED, None, 0.8, "The label is right but the reply is curt."),
    ('Draft: {"score": 0.2} Final: {"rationale": "on reflection", "score": 0.6}', None, 0.6,
     "on reflection"),
    # MT-Bench: [[n]], decimals allowed
    ("The response is accurate but lacks depth. Rating: [[2]]", (1.0, 10.0), 2.0, None),
    ("**Explanation.** Helpful and correct.\n\n**Rating:** [[7]]", (1.0, 10.0), 7.0, None),
    ("A [[5]] would be too generous for this: it misreads the question. Rating: [[3]]",
     (1.0, 10.0), 3.0, None),
    ("Therefore I rate it [[8.5]]. Let me know if you need anything else.", (1.0, 10.0), 8.5,
     None),
    ("The answer cites [1] and [2] correctly.\nRating: [[9]]", (1.0, 10.0), 9.0, None),
    # Prometheus absolute grading
    ("Feedback: The response meets most criteria. [RESULT] 4", (1.0, 5.0), 4.0, None),
    ("Feedback: A partial answer earns [RESULT] 3; this is complete. [RESULT] 5\n", (1.0, 5.0),
     5.0, None),
    # a last line SCORE / Score / Rating / Grade, with an optional denominator
    ("Mostly right.\nSCORE: 0.5", None, 0.5, None),
    ("### Verdict\nSolid.\n\n**Score:** 7/10", None, 7.0, None),
    ("Grade: 4", (1.0, 5.0), 4.0, None),
    ("Looks fine.\nRating: 8.", (1.0, 10.0), 8.0, None),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "scale", "raw", "reason"), POINTWISE)
def test_each_published_pointwise_format_is_read(
    answer: str, scale: tuple[float, float] | None, raw: float, reason: str | None
) -> None:
    score = parse_score(answer, scale)
    assert (score.raw, score.reason, score.error) == (raw, reason, None)
    assert score.value is not None and 0.0 <= score.value <= 1.0


def test_no_format_outranks_another_the_last_verdict_counts() -> None:
    assert parse_score('Rating: [[9]] {"score": 0.25}').raw == 0.25
    assert parse_score("[RESULT] 4 and then [[2]]", (1.0, 10.0)).raw == 2.0
    assert parse_score("[RESULT] 4\nScore: 2", (1.0, 5.0)).raw == 2.0
    assert parse_score('{"score": 0.25} and then [[9]]', (1.0, 10.0)).raw == 9.0
    assert parse_score("[[2]] and then [RESULT] 4", (1.0, 5.0)).raw == 4.0
    assert parse_winner('{"winner": "A"} [RESULT] B').winner == "B"
    assert parse_winner("[[A>>B]] [RESULT] B").winner == "B"
    assert parse_winner("[[A]]\nWINNER: tie").winner == "tie"


# A verdict of another format quoted before the judge's own: (answer, scale, raw score read).
# The judge's verdict is the last one; the formats were read in a fixed order of precedence
# (JSON, [[n]], [RESULT] n, a score line), which took the quoted one.
QUOTED_FIRST_POINTWISE = [
    # MT-Bench, after the JSON output it grades, in Markdown, with text after the verdict
    ("The assistant was asked to classify the ticket and reply in JSON. It replied:\n\n"
     '```json\n{"category": "billing", "score": 0.9}\n```\n\n'
     "The category is right, but `score` is not in the schema it was given.\n\n"
     "**Rating:** [[6]]\n\nLet me know if you want a stricter rubric.", (1.0, 10.0), 6.0),
    ('The reply {"score": 3, "label": "refund"} is well formed and correct. Rating: [[9]]',
     (1.0, 10.0), 9.0),
    # Prometheus, after an MT-Bench rating or a JSON object it quotes
    ("Feedback: The response explains that an MT-Bench grader must end with \"Rating: [[8]]\", "
     "brackets and all, but it misses the multi-turn prompts, so it meets only part of the "
     "rubric. [RESULT] 3\n", (1.0, 5.0), 3.0),
    ('Feedback: The response returns {"score": 1, "reason": ""} as the schema requires, but '
     "its reason says nothing. [RESULT] 2", (1.0, 5.0), 2.0),
    # a score line, after a quoted Prometheus result or a quoted JSON score
    ("### Assessment\nThe reply quotes the rubric (\"[RESULT] 5 means fully correct\") but is "
     "only partly right.\n\n**Score:** 6/10", None, 6.0),
    ('The model answered {"label": "refund", "score": 0.95}; the ticket is about billing.\n'
     "Score: 0.1", None, 0.1),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "scale", "raw"), QUOTED_FIRST_POINTWISE)
def test_a_verdict_quoted_in_another_format_does_not_outrank_the_last_one(
    answer: str, scale: tuple[float, float] | None, raw: float
) -> None:
    score = parse_score(answer, scale)
    assert (score.raw, score.reason, score.error) == (raw, None, None)


def test_the_last_verdict_counts_even_outside_the_scale() -> None:
    """An earlier verdict within the scale is not read instead: the answer is an error."""
    score = parse_score('The rubric\'s example is {"score": 0.8}. Rating: [[8]]')
    assert (score.value, score.raw, score.error) == (None, 8.0, "score 8 is outside 0-1")


# (answer, winner, strength)
QUOTED_FIRST_PAIRWISE = [
    # MT-Bench, after the JSON verdict one of the assistants wrote
    ("Both assistants were asked to compare two product descriptions and reply in JSON. "
     'Assistant A replied {"winner": "B", "reason": "more detail"}, which matches the '
     "reference; Assistant B replied in prose.\n\nFinal Verdict: [[A]]", "A", None),
    ('{"winner": "B"} is what a naive judge says. My final verdict is [[A]]', "A", None),
    # Arena-Hard, after a quoted JSON verdict, with text after the verdict
    ('Assistant A only outputs {"winner": "tie"} with no reasoning; Assistant B explains its '
     "choice.\n\nMy final verdict is Assistant B is slightly better: [[B>A]].\n\n"
     "Both could be shorter.", "B", "slight"),
    # Prometheus, after a quoted MT-Bench or Arena-Hard verdict
    ('Feedback: Response B ends with "Final Verdict: [[B]]" as the MT-Bench prompt asks, but '
     "its reasoning is wrong; Response A reasons correctly. [RESULT] A", "A", None),
    ("Feedback: Response A claims [[A>>B]] is the right call, yet Response B is the one that "
     "follows the rubric. [RESULT] B\n", "B", None),
    # the runner's own last line, after a quoted MT-Bench verdict or JSON verdict
    ("Assistant A ends with [[A]], a format this task does not use.\n\n**Winner:** B", "B",
     None),
    ('```json\n{"winner": "A"}\n```\nis the output under review; it is wrong.\nWINNER: B', "B",
     None),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "winner", "strength"), QUOTED_FIRST_PAIRWISE)
def test_a_winner_quoted_in_another_format_does_not_outrank_the_last_one(
    answer: str, winner: str, strength: str | None
) -> None:
    preference = parse_winner(answer)
    assert (preference.winner, preference.strength, preference.error) == (winner, strength, None)


def test_a_verdict_quoted_inside_a_json_object_belongs_to_it() -> None:
    """A verdict's place is where it ends: the object ends after what its reason quotes."""
    answer = '{"reason": "A [[9]] would be generous: wrong label.", "score": 3}'
    score = parse_score(answer, (1.0, 10.0))
    assert (score.raw, score.reason) == (3.0, "A [[9]] would be generous: wrong label.")
    preference = parse_winner('{"reason": "Not [[A>>B]]: both are right.", "winner": "tie"}')
    assert (preference.winner, preference.strength) == ("tie", None)


def test_a_denominator_names_the_scale_unless_one_is_given() -> None:
    assert parse_score("Score: 7/10").value == pytest.approx(0.7)
    assert parse_score("Score: 4/5").value == pytest.approx(0.8)
    assert parse_score("Score: 7/10", (1.0, 10.0)).value == pytest.approx(6 / 9)


@pytest.mark.parametrize(
    "answer",
    [
        "The response cites the policy [1]; I would give it a 7 out of 10.",  # FastChat fallback
        "Rating: [7]",
        "I rate it seven.",
        "SCORE: 1\nthanks!",  # a score line that is not the last line
        '{"score": "high"}',
    ],
)
def test_no_format_no_score_and_never_a_single_bracket(answer: str) -> None:
    score = parse_score(answer, (1.0, 10.0))
    assert score.value is None and score.raw is None and score.error is not None


def test_a_score_outside_the_scale_keeps_its_raw_value_and_names_the_scale() -> None:
    score = parse_score("Rating: [[8]]")
    assert (score.value, score.raw, score.error) == (None, 8.0, "score 8 is outside 0-1")


def test_a_forgotten_judge_scale_gets_a_hint() -> None:
    assert scale_hint([1.0, 8.0, 10.0]) == (
        "every score lies within 1-10: did you forget --judge-scale 1-10?"
    )
    assert scale_hint([1.0, 3.0, 5.0]) == (
        "every score lies within 1-5: did you forget --judge-scale 1-5?"
    )
    assert scale_hint([0.0, 0.5, 1.0]) is None  # within the scale
    assert scale_hint([2.0, 9.0], (1.0, 10.0)) is None
    assert scale_hint([7.0, 250.0]) is None  # no common scale fits
    assert scale_hint([None, 4.0]) == (
        "every score lies within 1-5: did you forget --judge-scale 1-5?"
    )


# (answer, winner, strength)
PAIRWISE = [
    ('{"winner": "B", "reason": "more accurate"}', "B", None),
    ('Comparing both.\n```json\n{"reason": "same", "winner": "tie"}\n```', "tie", None),
    # MT-Bench pair-v2
    ("Assistant B answers the question directly.\n\nFinal Verdict: [[B]]", "B", None),
    ("Therefore, my final verdict is: [[A]].", "A", None),
    ("Both are equally helpful. Final verdict: [[C]] for a tie.", "tie", None),
    ("At first glance [[A]] looked better, but on reflection: [[B]]", "B", None),
    ("Assistant A [1] and Assistant B [2] both cite sources. [[A]]", "A", None),
    # MT-Bench two ratings
    ("Assistant A: 8, Assistant B: 6. [[8, 6]]", "A", None),
    ("[[7, 7.05]]", "tie", None),
    # Arena-Hard
    ("My final verdict is Assistant A is significantly better: [[A>>B]]", "A", "strong"),
    ("**Verdict:** [[B>A]]\n\nBoth were concise.", "B", "slight"),
    ("I would not go as far as [[A>>B]]. My final verdict is [[B>>A]].", "B", "strong"),
    ("My final verdict is tie: [[A=B]].", "tie", None),
    ("My final verdict is [[A>B]]", "A", "slight"),
    # Prometheus relative grading
    ('Feedback: Response B follows the rubric. [RESULT] B', "B", None),
    ('Feedback: both fine.\n[RESULT] "A"\n', "A", None),
    # the runner's own last line
    ("Both are fine.\nWINNER: tie", "tie", None),
    ("A is clearer.\n\n**Winner:** A.", "A", None),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "winner", "strength"), PAIRWISE)
def test_each_published_pairwise_format_is_read(
    answer: str, winner: str, strength: str | None
) -> None:
    preference = parse_winner(answer)
    assert (preference.winner, preference.strength, preference.error) == (winner, strength, None)


@pytest.mark.parametrize(
    "answer",
    [
        "Assistant A is better.",
        "[A]",
        "[[D]]",
        "[[A>A]]",
        '{"winner": "C"}',
        "WINNER: A\nthat was easy",
    ],
)
def test_no_winner_is_an_error(answer: str) -> None:
    preference = parse_winner(answer)
    assert preference.winner is None and preference.error is not None


def test_the_strength_of_a_pair_needs_both_orders_strong() -> None:
    assert combine_strength("win", "strong", "strong") == "strong"
    assert combine_strength("loss", "strong", "slight") == "slight"
    assert combine_strength("win", None, "strong") == "slight"
    assert combine_strength("win", None, None) is None
    assert combine_strength("tie", "strong", "strong") is None
    assert combine_strength(None, "strong", "strong") is None


# ------------------------------------------------------------------------------ patterns


def test_a_score_pattern_reads_the_first_group_of_its_last_match() -> None:
    pattern = compile_pattern(r"(?i)grade\s*:\s*(\d+)", "--judge-pattern")
    answer = "Grade: 2 at first sight, but after checking the facts.\nGRADE: 4\nThanks."
    assert parse_score(answer, (1.0, 5.0), pattern).raw == 4.0
    assert parse_score("Rating: [[9]]", (1.0, 10.0), pattern).error == (
        "no match of the pattern '(?i)grade\\\\s*:\\\\s*(\\\\d+)'"
    )
    letters = compile_pattern(r"GRADE: ([A-Z])", "--judge-pattern")
    assert "not a number" in (parse_score("GRADE: C", None, letters).error or "")


@pytest.mark.parametrize("word", ["A", "b", "tie", "TIE", "C", "draw", "Equal", "="])
def test_a_winner_pattern_reads_a_side_or_a_tie_word(word: str) -> None:
    pattern = compile_pattern(r"Decision: (\S+)", "--pairwise-pattern")
    expected = {"a": "A", "b": "B"}.get(word.lower(), "tie")
    assert parse_winner(f"I compared them.\nDecision: {word}", pattern).winner == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [("Score: (\\d+", "not a valid regular expression"), ("Rating: \\d+", "no capture group")],
)
@pytest.mark.parametrize("option", ["--judge-pattern", "--pairwise-pattern"])
def test_a_bad_pattern_is_a_config_error_naming_its_option(
    text: str, why: str, option: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(option) + ".*" + why) as caught:
        compile_pattern(text, option)
    assert caught.value.exit_code == 2


def test_no_pattern_is_none() -> None:
    assert compile_pattern(None, "--judge-pattern") is None


# ------------------------------------------------------- the simulator's graders, read back

TICKETS = [f"{topic} case {i}" for i in range(40) for topic in ("refund", "password", "crash")]
SCALES = {"json": None, "mtbench": (1.0, 10.0), "prometheus": (1.0, 5.0),
          "score_line": None, "arena_hard": (1.0, 10.0), "winner_line": None}  # fmt: skip


@pytest.mark.parametrize("fmt", JUDGE_FORMATS)
def test_every_template_of_a_simulated_pointwise_format_reads_to_the_truth(fmt: str) -> None:
    answers = set()
    for i, ticket in enumerate(TICKETS):
        truth = reference_answer({"input": ticket})
        label = truth if i % 2 else "other"
        inputs = {"input": ticket, "output": label, "expected": ""}
        answer = judge_response("grader", inputs, fmt)
        score = parse_score(answer, SCALES[fmt])
        assert score.value == (1.0 if label == truth else 0.0), answer
        answers.add(re.sub(r"\d|refund|password|crash|billing|account|technical|other", "", answer))
    assert len(answers) >= 3  # more than one way of writing each verdict


@pytest.mark.parametrize("fmt", JUDGE_FORMATS)
def test_every_template_of_a_simulated_pairwise_format_reads_to_the_truth(fmt: str) -> None:
    for i, ticket in enumerate(TICKETS):
        truth = reference_answer({"input": ticket})
        a, b = [(truth, "other"), ("other", truth), (truth, truth), ("other", "shipping")][i % 4]
        expected = "A" if a == truth != b else "B" if b == truth != a else "tie"
        if fmt == "prometheus" and expected == "tie":
            expected = "A"  # no tie label: a forced choice of the first position
        inputs = {"input": ticket, "output_a": a, "output_b": b, "expected": ""}
        preference = parse_winner(judge_response("grader", inputs, fmt))
        assert preference.winner == expected
        if fmt == "arena_hard":
            assert (preference.strength is None) == (expected == "tie")


def test_the_template_functions_write_what_they_are_asked() -> None:
    inputs = {"input": "refund please"}
    assert parse_winner(pairwise_answer("arena_hard", "B", "billing", inputs)).winner == "B"
    assert parse_score(pointwise_answer("json", True, "billing", "billing", inputs)).value == 1.0


@pytest.mark.parametrize(
    ("style", "kind", "fmt"),
    [
        ("mtbench", "grader", "mtbench"),
        ("garbage", "garbage", None),
        ("biased", "pairwise_biased", None),
        ("biased:arena_hard", "pairwise_biased", "arena_hard"),
        ("pointwise:prometheus", "pointwise", "prometheus"),
    ],
)
def test_a_judge_style_names_a_kind_and_a_format(style: str, kind: str, fmt: str | None) -> None:
    profile = judge_profile(style)
    assert (profile.judge, profile.judge_format) == (kind, fmt)


@pytest.mark.parametrize("style", ["gpt4", "biased:yaml", "", ":mtbench"])
def test_an_unknown_judge_style_is_refused(style: str) -> None:
    with pytest.raises(ConfigError, match="judge style"):
        SimulatorConfig(judges={"grader": style})


def test_a_judge_deployment_answers_for_every_variant_and_others_do_not() -> None:
    config = SimulatorConfig.from_mapping({"judges": {"grader": "mtbench"}})
    assert config.profile("anything", "grader").judge == "grader"
    assert config.profile("baseline", "support-reply").judge is None
