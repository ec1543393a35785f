"""How judge errors are counted for the console: by kind, one example each, cut at a word."""

from __future__ import annotations

import polars as pl

from runner.judge._judge import KindReport
from runner.judge._verdicts import count_errors

LONG = (
    "no verdict in the answer: expected a rating such as [[7]] or 'Rating: 7' on the "
    "0-10 scale, found a refusal instead of one"
)


def test_errors_of_one_kind_count_together_and_a_long_reason_ends_at_a_word() -> None:
    outcomes = pl.DataFrame({"status": ["ok", "ok", "ok", "error"]})
    judged = pl.DataFrame(
        {"judge_error": [LONG, LONG.replace("[[7]]", "[[3]]"), None, "judge call failed: 502"]}
    )
    report = KindReport()
    count_errors(report, outcomes, judged)
    assert report.failed == 1
    (reason, count), (failed, _) = report.reasons.most_common()
    assert count == 2 and failed == "judge call failed: 502"  # a status code is a kind
    assert len(reason) <= 80 and reason.endswith(" …")
    assert reason.removesuffix(" …") in LONG.replace("7", "N").replace("0-10", "N-N")
    assert report.examples[reason] == LONG  # the example is the error as it was


def test_a_scale_keeps_its_dash_when_its_numbers_are_masked() -> None:
    report = KindReport()
    judged = pl.DataFrame({"judge_error": ["score 12 is outside 0-10", "score 11 is outside 0-10"]})
    count_errors(report, pl.DataFrame({"status": ["ok", "ok"]}), judged)
    assert report.reasons == {"score N is outside N-N": 2}
