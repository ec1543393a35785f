"""Deterministic scorers: built-in polars expressions and module:function."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.score._scoring import (
        SCORE_COLUMN,
        SCORE_ERROR_COLUMN,
        Scorer,
        missing_expected,
        parse_scorer,
        score_results,
    )

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "SCORE_COLUMN": "runner.score._scoring",
    "SCORE_ERROR_COLUMN": "runner.score._scoring",
    "Scorer": "runner.score._scoring",
    "missing_expected": "runner.score._scoring",
    "parse_scorer": "runner.score._scoring",
    "score_results": "runner.score._scoring",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "SCORE_COLUMN",
    "SCORE_ERROR_COLUMN",
    "Scorer",
    "missing_expected",
    "parse_scorer",
    "score_results",
]
