"""Scorers: parsing ``--score`` specs, the built-ins, custom functions, and null rules."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_series_equal

from runner.errors import ConfigError
from runner.score._scoring import Scorer, missing_expected, parse_scorer, score_results
from tests.reports_helpers import frame, row


def _score(spec: str, output: str | None, expected: str | None, status: str = "ok") -> float | None:
    results = frame([row("r1", "v", output, expected=expected, status=status)])
    value = score_results(results, parse_scorer(spec))["score"][0]
    return None if value is None else float(value)


@pytest.mark.parametrize(
    ("spec", "output", "expected", "score"),
    [
        ("exact", "Paris", "Paris", 1.0),
        ("exact", "Paris ", "Paris", 0.0),
        ("exact", "paris", "Paris", 0.0),
        ("normalized", "  PARIS!! ", "paris", 1.0),
        ("normalized", "New   York,\nNY", "new york ny", 1.0),
        ("normalized", "Paris", "London", 0.0),
        ("contains", "The capital is Paris.", "Paris", 1.0),
        ("contains", "The capital is paris.", "Paris", 0.0),
        ("contains", "a.b", ".", 1.0),  # literal, not a regex
        (r"regex:^\d{3}-\d{4}$", "555-1234", None, 1.0),
        (r"regex:^\d{3}-\d{4}$", "call 555-1234", None, 0.0),
        ("regex:(?i)yes", "YES, indeed", "ignored", 1.0),
        ("json", '{"a": 1, "b": [1, 2]}', None, 1.0),
        ("json", '{"b": [1, 2], "a": 1}', '{"a":1,"b":[1,2]}', 1.0),
        ("json", '{"a": 2}', '{"a": 1}', 0.0),
        ("json", "not json", None, 0.0),
        ("json", '"Paris"', "Paris", 1.0),  # plain-text expected stands for a JSON string
        ("number", "42", "42.0", 1.0),
        ("number", "The answer is 1,234.", "1234", 1.0),
        ("number", "3.1416", "3.14159", 0.0),
        ("number:0.001", "3.1416", "3.14159", 1.0),
        ("number", "-2.5e3", "-2500", 1.0),
        ("number", "no digits here", "7", 0.0),
    ],
)
def test_builtin_scorer(spec: str, output: str, expected: str | None, score: float) -> None:
    assert _score(spec, output, expected) == score


def test_errored_rows_get_no_score() -> None:
    assert _score("exact", None, "Paris", status="error") is None
    assert _score("regex:.", None, None, status="error") is None


def test_rows_without_expected_get_no_score_where_the_scorer_needs_one() -> None:
    assert _score("exact", "Paris", None) is None
    assert _score("number", "4", None) is None


def test_a_non_numeric_expected_value_cannot_be_scored_as_a_number() -> None:
    assert _score("number", "4", "four") is None


def test_scores_replace_an_existing_score_column() -> None:
    results = frame([row("r1", "v", "a", expected="a"), row("r2", "v", "b", expected="a")])
    first = score_results(results, parse_scorer("exact"))
    again = score_results(first, parse_scorer("contains"))
    assert again.columns.count("score") == 1
    assert_series_equal(again["score"], pl.Series("score", [1.0, 0.0]))


def test_a_lazy_frame_is_scored_lazily() -> None:
    results = frame([row("r1", "v", "a", expected="a")]).lazy()
    scored = score_results(results, parse_scorer("exact"))
    assert isinstance(scored, pl.LazyFrame)
    assert scored.collect()["score"].dtype == pl.Float64


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fuzzy", "not a known scorer"),
        ("regex:(", "not a valid regex"),
        ("number:-1", "tolerance"),
        ("number:abc", "tolerance"),
        ("no_such_module_xyz:f", "cannot import module"),
        ("json:no_such_function", "has no attribute"),
        ("math:pi", "not callable"),
        (":f", "not a known scorer"),
    ],
)
def test_bad_specs_are_config_errors_that_say_why(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        parse_scorer(spec)
    assert "\n" not in str(refused.value)  # one line on the console


def test_a_bad_regex_is_refused_naming_the_problem_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_scorer("regex:a(b")
    assert str(refused.value) == "--score regex:'a(b' is not a valid regex: unclosed group"


@pytest.fixture
def scorer_module(importable: Callable[[str, str], str]) -> str:
    """A module ``my_scorers`` on sys.path with a few custom scorers."""
    return importable(
        "my_scorers",
        """
        def length_ratio(output, expected, row):
            return min(len(output), len(expected)) / max(len(output), len(expected), 1)

        def uses_row(output, expected, row):
            return 1.0 if row["inputs"]["q"] == output else 0.0

        def too_big(output, expected, row):
            return 2.0

        def broken(output, expected, row):
            raise KeyError("nope")

        def says_yes(output, expected, row):
            return "yes"

        def picky(output, expected, row):
            if output == "boom":
                raise KeyError("boom")
            return 1.0

        def rubric(output, expected, row):
            assert expected is None
            return 1.0 if len(output) < 10 else 0.0
        """,
    )


def test_custom_scorer_gives_graded_scores(scorer_module: str) -> None:
    assert _score(f"{scorer_module}:length_ratio", "abcd", "abcdefgh") == 0.5


def test_custom_scorer_sees_the_row_with_decoded_inputs(scorer_module: str) -> None:
    results = frame([row("r1", "v", "hello", expected="x", inputs={"q": "hello"})])
    scored = score_results(results, parse_scorer(f"{scorer_module}:uses_row"))
    assert scored["score"].to_list() == [1.0]


def _scored(spec: str, *rows: dict[str, Any]) -> list[tuple[float | None, str | None]]:
    scored = score_results(frame(rows), parse_scorer(spec))
    return list(zip(scored["score"].to_list(), scored["score_error"].to_list(), strict=True))


def test_a_custom_scorer_out_of_range_leaves_that_row_unscored_with_a_score_error(
    scorer_module: str,
) -> None:
    """Was a ConfigError that stopped every report; now the row carries the reason."""
    assert _scored(f"{scorer_module}:too_big", row("r1", "v", "a", expected="a")) == [
        (None, "returned 2.0, not a number in [0, 1]")
    ]


def test_a_custom_scorer_returning_text_names_the_value(scorer_module: str) -> None:
    assert _scored(f"{scorer_module}:says_yes", row("r1", "v", "a")) == [
        (None, "returned 'yes', not a number in [0, 1]")
    ]


def test_a_custom_scorer_that_raises_on_one_row_scores_the_others(scorer_module: str) -> None:
    rows = [row("r1", "v", "fine"), row("r2", "v", "boom"), row("r3", "v", "fine")]
    assert _scored(f"{scorer_module}:picky", *rows) == [
        (1.0, None),
        (None, "KeyError: 'boom'"),
        (1.0, None),
    ]


def test_a_custom_scorer_runs_without_an_expected_value(scorer_module: str) -> None:
    """A rubric needs no reference: expected is None and every ok row is scored."""
    rows = [row("r1", "v", "short"), row("r2", "v", "a much longer answer")]
    assert _scored(f"{scorer_module}:rubric", *rows) == [(1.0, None), (0.0, None)]


def test_builtin_scorers_have_no_score_errors() -> None:
    scored = score_results(frame([row("r1", "v", "a", expected="a")]), parse_scorer("exact"))
    assert scored["score_error"].to_list() == [None]


def test_rows_without_expected_are_counted_for_scorers_that_need_one(scorer_module: str) -> None:
    rows = frame([row("r1", "v", "a"), row("r2", "v", "a", expected="a"), row("r3", "v", "a")])
    assert missing_expected(rows, parse_scorer("exact")) == 2
    assert missing_expected(rows, parse_scorer(f"{scorer_module}:rubric")) == 0


def test_custom_scorer_is_not_called_on_errored_rows(scorer_module: str) -> None:
    assert _score(f"{scorer_module}:broken", None, "a", status="error") is None


def test_a_multi_line_error_is_kept_on_one_line(scorer_module: str) -> None:
    [(score, error)] = _scored(f"{scorer_module}:broken", row("r1", "v", "a", expected="a"))
    assert score is None
    assert error == "KeyError: 'nope'"
    assert "\n" not in error


def test_custom_scorer_runs_on_a_lazy_frame(scorer_module: str) -> None:
    results = frame([row("r1", "v", "abcd", expected="abcdefgh")]).lazy()
    scored = score_results(results, parse_scorer(f"{scorer_module}:length_ratio"))
    assert scored.collect()["score"].to_list() == [0.5]


def test_custom_scorer_on_a_lazy_frame_records_score_errors(scorer_module: str) -> None:
    rows = frame([row("r1", "v", "fine"), row("r2", "v", "boom")]).lazy()
    scored = score_results(rows, parse_scorer(f"{scorer_module}:picky")).collect()
    assert scored.select("score", "score_error").rows() == [(1.0, None), (None, "KeyError: 'boom'")]


def test_importing_a_scorer_from_the_working_directory_leaves_sys_path_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_scorers_h4.py").write_text("def one(output, expected, row):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "cwd_scorers_h4", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    scorer = parse_scorer("cwd_scorers_h4:one")
    assert sys.path == before
    assert _scored_with(scorer) == [1.0]


def _scored_with(scorer: Scorer) -> list[float | None]:
    results = score_results(frame([row("r1", "v", "x")]), scorer)
    scores: list[float | None] = results["score"].to_list()
    return scores
