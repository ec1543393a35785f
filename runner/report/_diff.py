"""A word-level diff of two outputs, as escaped HTML: what the candidate added is ``<ins>``,
what it dropped of the baseline's words is ``<del>``, the rest plain text."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from html import escape
from typing import Final

_TOKEN: Final = re.compile(r"\s+|\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """``text`` cut into words, runs of white space and single punctuation marks; joined again
    they give ``text`` back."""
    return _TOKEN.findall(text)


def word_diff(baseline: str, candidate: str) -> str:
    """The candidate's text as HTML, its changes against ``baseline`` marked word by word."""
    a, b = words(baseline), words(candidate)
    parts: list[str] = []
    for op, a0, a1, b0, b1 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(escape("".join(b[b0:b1])))
            continue
        if op in ("delete", "replace"):
            parts.append(f"<del>{escape(''.join(a[a0:a1]))}</del>")
        if op == "replace":
            parts.append(" ")  # a replaced word reads "old new", not "oldnew"
        if op in ("insert", "replace"):
            parts.append(f"<ins>{escape(''.join(b[b0:b1]))}</ins>")
    return "".join(parts)
