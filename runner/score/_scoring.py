"""Scoring outputs against the expected column, chosen with ``--score``.

Built-in scorers (all give 0 or 1):

``exact``       output equals expected, character for character
``normalized``  equal after folding case, punctuation and runs of whitespace
``contains``    output contains expected (literal, case-sensitive)
``regex:PAT``   output matches PAT anywhere (Rust regex syntax); needs no expected value
``json``        output parses as JSON and, where expected is given, equals it as JSON
``number[:TOL]`` the output's number equals expected's within TOL (absolute, default 1e-6);
                the whole output is read as a number, else the last number in it

A custom scorer is ``module:function``, a function ``(output, expected, row) -> float`` in
[0, 1] where ``row`` is the result row as a dict with ``inputs`` decoded. It runs on every ok
row, with ``expected`` None where the row has none (a rubric needs no reference).

A score is null when the call errored, when the scorer needs an expected value and the row
has none (:func:`missing_expected` counts those, for one note in the reports), or when a
custom scorer failed on the row: then ``score_error`` says why (the exception's type and
message, or ``returned 'x', not a number in [0, 1]``). A failing row never stops scoring.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import numbers
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, overload

import polars as pl

from runner.errors import ConfigError
from runner.records import STATUS_OK

CustomScoreFn = Callable[[str, "str | None", Mapping[str, Any]], float]
ExprScorer = Callable[[pl.Expr, pl.Expr], pl.Expr]
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

SCORE_COLUMN: Final = "score"
SCORE_ERROR_COLUMN: Final = "score_error"
MAX_SCORE_ERROR_CHARS: Final = 300
DEFAULT_NUMBER_TOLERANCE: Final = 1e-6

# Unicode punctuation and symbols; folding them keeps "Paris." equal to "paris".
_PUNCTUATION: Final = r"[\p{P}\p{S}]"
_NUMBER: Final = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True, slots=True)
class Scorer:
    """A parsed ``--score`` spec: either a polars expression builder or a row function."""

    spec: str
    """The spec as given, e.g. ``exact`` or ``regex:^\\d+$``; goes into reports."""
    label: str
    """How reports name the score: ``exact match``, ``score (mod:fn)``."""
    needs_expected: bool = True
    """When True, rows without an expected value get a null score."""
    expr: ExprScorer | None = None
    """Vectorised scorer: ``(output, expected) -> Float64`` expression."""
    func: CustomScoreFn | None = None
    """Row scorer, called once per scorable row (custom scorers)."""


def _exact(output: pl.Expr, expected: pl.Expr) -> pl.Expr:
    return (output == expected).cast(pl.Float64)


def _fold(text: pl.Expr) -> pl.Expr:
    return (
        text.str.to_lowercase()
        .str.replace_all(_PUNCTUATION, "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def _normalized(output: pl.Expr, expected: pl.Expr) -> pl.Expr:
    return (_fold(output) == _fold(expected)).cast(pl.Float64)


def _contains(output: pl.Expr, expected: pl.Expr) -> pl.Expr:
    return output.str.contains(expected, literal=True).cast(pl.Float64)


def _regex(pattern: str) -> ExprScorer:
    def score(output: pl.Expr, expected: pl.Expr) -> pl.Expr:
        return output.str.contains(pattern).cast(pl.Float64)

    return score


def _as_number(text: pl.Expr) -> pl.Expr:
    whole = (
        text.str.strip_chars().str.replace_all(r"(\d),(\d)", "$1$2").cast(pl.Float64, strict=False)
    )
    last = text.str.replace_all(r"(\d),(\d)", "$1$2").str.extract_all(_NUMBER).list.last()
    return pl.coalesce(whole, last.cast(pl.Float64, strict=False))


def _number(tolerance: float) -> ExprScorer:
    def score(output: pl.Expr, expected: pl.Expr) -> pl.Expr:
        want = expected.str.strip_chars().cast(pl.Float64, strict=False)
        got = _as_number(output)
        close = ((got - want).abs() <= tolerance).fill_null(False)
        # An expected value that is not a number cannot be scored numerically.
        return pl.when(want.is_null()).then(None).otherwise(close.cast(pl.Float64))

    return score


_MISSING: Final = object()


def _loads(text: str | None) -> Any:
    if text is None:
        return _MISSING
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING


def json_score(output: str, expected: str | None, row: Mapping[str, Any]) -> float:
    """1.0 when ``output`` is JSON and (if ``expected`` is given) equal to it as JSON."""
    got = _loads(output)
    if got is _MISSING:
        return 0.0
    if expected is None:
        return 1.0
    want = _loads(expected)
    # Plain-text expected values ("Paris") stand for the JSON string "Paris".
    return float(got == (expected if want is _MISSING else want))


_BUILTINS: Final[dict[str, Scorer]] = {
    "exact": Scorer("exact", "exact match", expr=_exact),
    "normalized": Scorer("normalized", "normalized match", expr=_normalized),
    "contains": Scorer("contains", "contains expected", expr=_contains),
    "json": Scorer("json", "JSON match", needs_expected=False, func=json_score),
    "number": Scorer("number", "numeric match", expr=_number(DEFAULT_NUMBER_TOLERANCE)),
}

_HELP: Final = (
    "use exact, normalized, contains, json, number[:TOL], regex:PATTERN, or module:function"
)


def parse_scorer(spec: str) -> Scorer:
    """Turn a ``--score`` spec into a :class:`Scorer`, or raise :class:`ConfigError`."""
    spec = spec.strip()
    if spec in _BUILTINS:
        return _BUILTINS[spec]
    head, sep, tail = spec.partition(":")
    if not sep or not head or not tail:
        raise ConfigError(f"--score {spec!r} is not a known scorer; {_HELP}")
    if head == "regex":
        return Scorer(spec, "regex match", needs_expected=False, expr=_regex(_check_regex(tail)))
    if head == "number":
        return Scorer(spec, "numeric match", expr=_number(_tolerance(tail)))
    return Scorer(spec, f"score ({spec})", needs_expected=False, func=_import_function(head, tail))


def _check_regex(pattern: str) -> str:
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(
            f"--score regex:{pattern!r} is not a valid regex: {_regex_problem(str(exc))}"
        ) from exc
    return pattern


def _regex_problem(message: str) -> str:
    """The one line of a polars regex error that names the problem (``unclosed group``): its
    message spans lines, with the pattern drawn and the expression that failed."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    named = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    return (named or lines or ["cannot be parsed"])[0]


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--score number:{text}: tolerance must be a number >= 0")
    return value


def _import_function(module_name: str, attr: str) -> CustomScoreFn:
    where = f"--score {module_name}:{attr}"
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import module {module_name!r}: {exc}") from exc
    func = getattr(module, attr, None)
    if func is None:
        raise ConfigError(f"{where}: module {module_name!r} has no attribute {attr!r}")
    if not callable(func):
        raise ConfigError(f"{where}: {attr!r} is not callable")
    return func  # type: ignore[no-any-return]


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The `runner` script, unlike `python -m runner`, does not put the working directory
        # on sys.path; a scorer module next to the dataset should import either way. The
        # path is put back as it was: the import must not change what later imports find.
        cwd = os.getcwd()
        if exc.name != module_name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.insert(0, cwd)
        try:
            return importlib.import_module(module_name)
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def missing_expected(frame: pl.DataFrame | pl.LazyFrame, scorer: Scorer) -> int:
    """Ok rows that ``scorer`` leaves unscored because they have no expected value."""
    if not scorer.needs_expected:
        return 0
    rows = frame.lazy().filter((pl.col("status") == STATUS_OK) & pl.col("expected").is_null())
    return int(rows.select(pl.len()).collect().item())


_SCORED: Final = pl.Struct({SCORE_COLUMN: pl.Float64, SCORE_ERROR_COLUMN: pl.String})


@overload
def score_results(frame: pl.DataFrame, scorer: Scorer) -> pl.DataFrame: ...
@overload
def score_results(frame: pl.LazyFrame, scorer: Scorer) -> pl.LazyFrame: ...
def score_results(frame: Frame, scorer: Scorer) -> Frame:
    """Return ``frame`` with a Float64 ``score`` and a String ``score_error`` column (replacing
    any), the score null where unscorable.

    Built-in scorers are polars expressions and never fail on a row. Row scorers run once per
    scorable row; a row where the function raises or returns something other than a number
    in [0, 1] gets a null score and its ``score_error``.
    """
    if scorer.expr is None:
        call = _row_scorer(scorer)
        if isinstance(frame, pl.DataFrame):
            scored = [call(row) for row in frame.iter_rows(named=True)]
            return frame.with_columns(
                pl.Series(SCORE_COLUMN, [v for v, _ in scored], dtype=pl.Float64),
                pl.Series(SCORE_ERROR_COLUMN, [e for _, e in scored], dtype=pl.String),
            )
        udf = pl.struct(pl.all()).map_elements(
            lambda row: dict(zip((SCORE_COLUMN, SCORE_ERROR_COLUMN), call(row), strict=True)),
            return_dtype=_SCORED,
            skip_nulls=False,
        )
        stale = frame.drop(SCORE_COLUMN, SCORE_ERROR_COLUMN, strict=False)
        return stale.with_columns(udf.alias("_scored")).unnest("_scored")
    output, expected = pl.col("output").fill_null(""), pl.col("expected")
    scorable = pl.col("status") == STATUS_OK
    if scorer.needs_expected:
        scorable = scorable & expected.is_not_null()
    raw = scorer.expr(output, expected)
    return frame.with_columns(
        pl.when(scorable).then(raw).otherwise(None).cast(pl.Float64).alias(SCORE_COLUMN),
        pl.lit(None, dtype=pl.String).alias(SCORE_ERROR_COLUMN),
    )


def _row_scorer(scorer: Scorer) -> Callable[[dict[str, Any]], tuple[float | None, str | None]]:
    func = scorer.func
    assert func is not None, "a Scorer has an expr or a func"

    def call(row: dict[str, Any]) -> tuple[float | None, str | None]:
        if row["status"] != STATUS_OK or (scorer.needs_expected and row["expected"] is None):
            return None, None
        try:
            value = func(row["output"] or "", row["expected"], _decoded(row))
        except Exception as exc:  # user code: any failure is this row's score_error
            return None, _one_line(f"{type(exc).__name__}: {exc}")
        if isinstance(value, numbers.Real) and 0.0 <= float(value) <= 1.0:
            return float(value), None
        return None, _one_line(f"returned {value!r}, not a number in [0, 1]")

    return call


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_SCORE_ERROR_CHARS:
        return text[: MAX_SCORE_ERROR_CHARS - 1] + "…"
    return text


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    try:
        inputs = json.loads(row["inputs"]) if row.get("inputs") else {}
    except ValueError:
        inputs = row["inputs"]
    return {**row, "inputs": inputs}
