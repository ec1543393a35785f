"""Scorers: parsing ``--score`` specs, the built-ins, custom functions, and null rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest_reports import frame, row
from polars.testing import assert_series_equal

from runner.errors import ConfigError
from runner.scoring import parse_scorer, score_results


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
    with pytest.raises(ConfigError, match=message):
        parse_scorer(spec)


@pytest.fixture
def scorer_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module ``my_scorers`` on sys.path with a few custom scorers."""
    (tmp_path / "my_scorers.py").write_text(
        textwrap.dedent(
            """
            def length_ratio(output, expected, row):
                return min(len(output), len(expected)) / max(len(output), len(expected), 1)

            def uses_row(output, expected, row):
                return 1.0 if row["inputs"]["q"] == output else 0.0

            def too_big(output, expected, row):
                return 2.0

            def broken(output, expected, row):
                raise KeyError("nope")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_scorers"


def test_custom_scorer_gives_graded_scores(scorer_module: str) -> None:
    assert _score(f"{scorer_module}:length_ratio", "abcd", "abcdefgh") == 0.5


def test_custom_scorer_sees_the_row_with_decoded_inputs(scorer_module: str) -> None:
    results = frame([row("r1", "v", "hello", expected="x", inputs={"q": "hello"})])
    scored = score_results(results, parse_scorer(f"{scorer_module}:uses_row"))
    assert scored["score"].to_list() == [1.0]


def test_custom_scorer_out_of_range_is_an_error(scorer_module: str) -> None:
    with pytest.raises(ConfigError, match=r"returned 2\.0 for row 'r1'.*\[0, 1\]"):
        _score(f"{scorer_module}:too_big", "a", "a")


def test_custom_scorer_that_raises_names_the_row(scorer_module: str) -> None:
    with pytest.raises(ConfigError, match=r"raised KeyError.*row .r1."):
        _score(f"{scorer_module}:broken", "a", "a")


def test_custom_scorer_is_not_called_on_errored_rows(scorer_module: str) -> None:
    assert _score(f"{scorer_module}:broken", None, "a", status="error") is None


def test_custom_scorer_error_reaches_the_caller_unwrapped(scorer_module: str) -> None:
    with pytest.raises(ConfigError) as info:
        _score(f"{scorer_module}:broken", "a", "a")
    assert "\n" not in str(info.value)


def test_custom_scorer_runs_on_a_lazy_frame(scorer_module: str) -> None:
    results = frame([row("r1", "v", "abcd", expected="abcdefgh")]).lazy()
    scored = score_results(results, parse_scorer(f"{scorer_module}:length_ratio"))
    assert scored.collect()["score"].to_list() == [0.5]
