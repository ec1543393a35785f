"""Deterministic scorers: built-in polars expressions and module:function."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.score._scored import Scored, plain_field, score_file, scored_results, stored_scorer
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
    "Scored": "runner.score._scored",
    "Scorer": "runner.score._scoring",
    "missing_expected": "runner.score._scoring",
    "parse_scorer": "runner.score._scoring",
    "plain_field": "runner.score._scored",
    "score_file": "runner.score._scored",
    "score_results": "runner.score._scoring",
    "scored_results": "runner.score._scored",
    "stored_scorer": "runner.score._scored",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "SCORE_COLUMN",
    "SCORE_ERROR_COLUMN",
    "Scored",
    "Scorer",
    "missing_expected",
    "parse_scorer",
    "plain_field",
    "score_file",
    "score_results",
    "scored_results",
    "stored_scorer",
]
