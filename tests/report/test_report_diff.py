"""The word-level diff the report shows for changed rows."""

from __future__ import annotations

import re

from runner.report._diff import word_diff, words


def test_words_join_back_to_the_text() -> None:
    text = "Hello,  world!\nIt's 42."
    assert "".join(words(text)) == text


def test_unchanged_text_has_no_marks() -> None:
    assert word_diff("same words here", "same words here") == "same words here"


def test_a_replaced_word_reads_old_then_new_with_a_space() -> None:
    assert word_diff("route to shipping", "route to billing") == (
        "route to <del>shipping</del> <ins>billing</ins>"
    )


def test_added_and_dropped_words_are_marked_and_escaped() -> None:
    html = word_diff("a <b> c", "a c d")
    assert "<del>" in html and "<ins>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html  # model text is escaped


def test_the_candidates_text_is_what_remains_without_the_deletions() -> None:
    baseline, candidate = "the parcel was lost", "the parcel was found today"
    html = word_diff(baseline, candidate)
    kept = re.sub(r"<del>.*?</del> ?", "", html)
    assert re.sub(r"</?ins>", "", kept) == candidate
