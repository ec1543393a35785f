"""Nothing a server says can drive the terminal (issue 21, point 5): every C0 and C1 control
but newline and tab is removed from server text before it is printed, with the CSI, OSC and
DCS sequences they start, terminated or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.cli.app import fail
from runner.errors import RunAborted
from runner.report._console import error_line
from runner.simulator import wire
from runner.store._results import read_results
from runner.terminal import terminal_safe
from tests.export_helpers import make_run
from tests.simulator_helpers import simulators

#: A hyperlink planted with an unterminated OSC 8, a window title (OSC 0, BEL), colour (CSI),
#: a DCS string, 8-bit CSI and OSC, a bell, a backspace and a carriage return.
HOSTILE = (
    "Invalid \x1b]8;;http://evil.example/\x1b]0;owned\x07parameters \x1b[31mfor\x1b[0m this "
    "\x1bPq#0;2\x1b\\deployment\x9b2J\x9d52;c;aGk=\x9c\x07\x08\r done\x1b]8;;http://evil.example/"
)
VISIBLE = "Invalid parameters for this deployment done"


def assert_inert(text: str) -> None:
    controls = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert controls == [], repr(text)
    assert "evil.example" not in text and "owned" not in text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text\nsecond line\twith a tab", "plain text\nsecond line\twith a tab"),
        ("a\x1b]8;;http://x/\x07link\x1b]8;;\x07b", "alinkb"),
        ("a\x1b]8;;http://x/\x1b\\link", "alink"),
        ("a\x1b]8;;http://x/ unterminated\nnext line", "a\nnext line"),
        ("a\x1bP1$r0m\x1b\\b", "ab"),
        ("a\x1bPunterminated", "a"),
        ("a\x1b[1;31mred\x1b[0m", "ared"),
        ("a\x9b31mb\x9d0;title\x9cc", "abc"),
        ("a\x1bXsos\x1b\\b\x1b^pm\x1b\\c\x1b_apc\x1b\\d", "abcd"),
        ("a\x1b7b\x1b(Bc\x1bcd", "abcd"),
        ("\x00\x07\x08\x0b\x0c\r\x1b\x7f\x85\x9f", ""),
        ("é, 日本, emoji 🙂", "é, 日本, emoji 🙂"),
    ],
)
def test_terminal_safe_removes_every_control_and_the_sequence_it_starts(
    raw: str, shown: str
) -> None:
    assert terminal_safe(raw) == shown


def test_the_hostile_message_keeps_only_its_words() -> None:
    assert " ".join(terminal_safe(HOSTILE).split()) == VISIBLE
    assert_inert(terminal_safe(HOSTILE))


def test_an_error_example_in_the_summary_is_printed_inert() -> None:
    line = error_line(
        {"error_type": "http_400", "count": 3, "http_status": 400, "example": HOSTILE}
    )
    assert_inert(line)
    assert line.startswith("http_400 ×3 (HTTP 400): Invalid")


def test_an_aborted_run_with_a_hostile_server_message_fails_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API's refusal (a 402 whose text is hostile) reaches the one line of ``fail``."""
    data = tmp_path / "data.csv"
    pl.DataFrame({"question": ["q0", "q1"]}).write_csv(data)

    def refuse(body: dict[str, Any], attempt: int) -> httpx.Response:
        return httpx.Response(402, json={"error": HOSTILE, "code": "no_credit"})

    with pytest.raises(RunAborted) as raised:
        make_run(data, tmp_path / "out", "a", respond=refuse)
    assert "\x1b]" in str(raised.value)  # the server's text is in the error as it came
    with pytest.raises(SystemExit) as code:
        fail(raised.value)
    assert code.value.code == 3
    printed = capsys.readouterr()
    assert_inert(printed.out + printed.err)
    assert "Invalid parameters" in printed.err


def test_a_hostile_error_from_a_real_server_never_reaches_stdout_or_stderr(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a socket: the simulator answers every call 400 with the hostile text; the run keeps
    it as row data, and ``runner report`` prints the error example without its controls."""
    monkeypatch.setitem(wire.FAULT_REPLIES, "http_400", (400, wire.error_body(HOSTILE, "bad")))
    data = tmp_path / "data.csv"
    pl.DataFrame({"question": [f"q{i}" for i in range(4)]}).write_csv(data)
    with simulators(caplog) as serve:
        server = serve(permanent={"http_400": 1.0})
        out = make_run(data, tmp_path / "out", "a", "b", base_url=server.base_url, real=True)
    messages = read_results(out)["error_message"].to_list()
    assert all("\x1b]8;;" in m for m in messages)  # stored as the server sent it
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "Invalid" in result.stdout and "http_400" in result.stdout
    assert_inert(result.stdout + result.stderr)
