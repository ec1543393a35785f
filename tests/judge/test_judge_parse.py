"""Reading a judge's answer: scores, winners, scales, and the verdict from both orders."""

from __future__ import annotations

import pytest

from runner.errors import ConfigError
from runner.judge._parse import JudgeSpec, combine, parse_scale, parse_score, parse_winner


@pytest.mark.parametrize(
    ("answer", "value", "reason"),
    [
        ('{"score": 0.75, "reason": "mostly right"}', 0.75, "mostly right"),
        ('Here you go: {"score": 1} and more text', 1.0, None),
        ('{"note": "no score here"} then {"score": 0, "reason": "wrong"}', 0.0, "wrong"),
        ("I think it is fine.\nSCORE: 0.5", 0.5, None),
        ("reasoning...\n  score: 1  \n\n", 1.0, None),
    ],
)
def test_a_score_is_read_from_json_or_a_last_line(answer: str, value: float, reason: str) -> None:
    score = parse_score(answer)
    assert (score.value, score.reason, score.error) == (value, reason, None)


@pytest.mark.parametrize(
    "answer",
    ["", "looks good to me", '{"score": "high"}', '{"score": true}', "SCORE: 0.5\nthanks"],
)
def test_an_answer_without_a_score_is_a_judge_error_not_a_crash(answer: str) -> None:
    score = parse_score(answer)
    assert score.value is None and score.error is not None


def test_a_score_out_of_range_is_an_error() -> None:
    assert parse_score('{"score": 7}').error == "score 7 is outside 0-1"
    assert parse_score('{"score": 11}', (1.0, 10.0)).value is None


def test_a_scale_maps_onto_zero_to_one() -> None:
    scale = parse_scale("1-10")
    assert scale == (1.0, 10.0)
    assert parse_score('{"score": 1}', scale).value == 0.0
    assert parse_score('{"score": 10}', scale).value == 1.0
    assert parse_score("SCORE: 5.5", scale).value == pytest.approx(0.5)


@pytest.mark.parametrize("text", ["10-1", "1", "a-b", "5-5"])
def test_a_bad_scale_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--judge-scale"):
        parse_scale(text)


def test_a_quoted_json_verdict_does_not_outrank_the_judges_own() -> None:
    """Found by QA: a JSON verdict beat [[n]], which beat [RESULT] n, wherever each stood."""
    answer = 'The answer {"score": 3, "label": "x"} is correct. Rating: [[9]]'
    assert parse_score(answer, (1.0, 10.0)).raw == 9.0
    assert parse_score("Feedback: a [[5]] would be generous. [RESULT] 3", (1.0, 10.0)).raw == 3.0
    answer = '{"winner": "B"} is what a naive judge says. My final verdict is [[A]]'
    assert parse_winner(answer).winner == "A"


@pytest.mark.parametrize(
    ("answer", "winner"),
    [
        ('{"winner": "A", "reason": "clearer"}', "A"),
        ('{"winner": "b"}', "B"),
        ('{"winner": "TIE"}', "tie"),
        ("Both are fine.\nWINNER: tie", "tie"),
        ("winner: B", "B"),
    ],
)
def test_a_winner_is_read_in_any_case(answer: str, winner: str) -> None:
    assert parse_winner(answer).winner == winner


def test_an_answer_without_a_winner_is_an_error() -> None:
    assert parse_winner('{"winner": "C"}').error is not None
    assert parse_winner("A is better").winner is None


@pytest.mark.parametrize(
    ("baseline_first", "candidate_first", "verdict", "agreed"),
    [
        ("B", "A", "win", True),  # both orders pick the candidate
        ("A", "B", "loss", True),  # both orders pick the baseline
        ("tie", "tie", "tie", True),
        ("A", "A", "tie", False),  # always the first position: a position bias
        ("B", "B", "tie", False),
        ("B", "tie", "tie", False),
        # An order without a winner gives no verdict: an unread verdict is never a tie.
        (None, "A", None, None),
        ("B", None, None, None),
        (None, None, None, None),
    ],
)
def test_a_side_wins_only_when_both_orders_pick_it(
    baseline_first: str | None,
    candidate_first: str | None,
    verdict: str | None,
    agreed: bool | None,
) -> None:
    assert combine(baseline_first, candidate_first) == (verdict, agreed)  # type: ignore[arg-type]


def test_a_judge_spec_is_deployment_colon_variant() -> None:
    assert JudgeSpec.parse("grader:v2", "--judge") == JudgeSpec("grader", "v2")
    assert str(JudgeSpec.parse("team/grader:v2", "--judge")) == "team/grader:v2"
    with pytest.raises(ConfigError, match="DEPLOYMENT:VARIANT"):
        JudgeSpec.parse("grader", "--judge")
