"""Text a server or a model wrote, made safe to print on a terminal. Pure, stdlib only.

A terminal obeys what it is sent: an escape sequence in an error message can retitle the
window, hide or rewrite lines, plant a hyperlink (``ESC ] 8 ;; url``) or, on some terminals,
write to the clipboard. :func:`terminal_safe` removes every C0 and C1 control character
except newline and tab, and with each introducer the sequence it starts: CSI (``ESC [``),
OSC (``ESC ]``), DCS (``ESC P``), SOS, PM and APC (``ESC X``, ``ESC ^``, ``ESC _``), in
their 7-bit and 8-bit forms. A string sequence (OSC, DCS …) goes with its payload, up to its
terminator (BEL or ST, ``ESC \\``) or, unterminated, up to the end of the line, as a
terminal would swallow it.

Every string the console prints that a server or a model provided (error messages and their
examples, verdict reasons) goes through it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["terminal_safe"]

_SEQUENCES: Final = re.compile(
    # string sequences: OSC, DCS, SOS, PM, APC with their payload and terminator (if any)
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    # CSI: parameters, intermediates, final byte
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    # any other escape sequence: intermediates and a final byte
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
    # every other C0 control but tab and newline, DEL, and C1
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def terminal_safe(text: str) -> str:
    """``text`` without control characters (newline and tab kept) or the escape sequences
    they introduce, terminated or not: it cannot drive the terminal it is printed on."""
    return _SEQUENCES.sub("", text)
