"""The console script ends without the interpreter's clean-up, and only when nothing is lost.

Each test runs a real child process: the clean-up being skipped shows as a finalizer that never
runs (an object whose ``__del__`` writes a marker file during the interpreter's teardown).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from runner.entry import files_open_for_writing
from runner.simulator import SimulatorConfig, SimulatorServer
from runner.store._results import read_manifest, read_results

ROOT = Path(__file__).resolve().parents[2]

#: Put first in every child: a finalizer that only the interpreter's clean-up would run.
MARKER = """
import sys
from pathlib import Path

class _Teardown:
    def __init__(self, path):
        self.path = path
    def __del__(self):
        Path(self.path).write_text("the interpreter cleaned up")

_teardown = _Teardown(sys.argv[1])
"""


def child(tmp_path: Path, body: str, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run ``body`` after MARKER in a new interpreter; (the process, whether clean-up ran)."""
    script = tmp_path / "child.py"
    script.write_text(MARKER + textwrap.dedent(body))
    marker = tmp_path / "teardown-ran"
    proc = subprocess.run(
        [sys.executable, str(script), str(marker), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FETCH_HIVE_API_KEY": "", "FETCH_HIVE_BASE_URL": ""},
    )
    return proc, marker.exists()


# --- the checks ----------------------------------------------------------------------------


def test_a_file_open_for_writing_is_found_and_a_read_only_one_is_not(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    with open(tmp_path / "in.txt") as reading:
        assert str(tmp_path / "in.txt") not in (files_open_for_writing() or [])
        with open(tmp_path / "out.txt", "a") as writing:
            writing.write("pending")
            assert str(tmp_path / "out.txt") in (files_open_for_writing() or [])
        assert str(tmp_path / "out.txt") not in (files_open_for_writing() or [])
        assert not reading.closed


# --- exit_now in a child process -----------------------------------------------------------


def test_with_everything_closed_the_clean_up_is_skipped_and_the_code_kept(tmp_path: Path) -> None:
    proc, cleaned_up = child(
        tmp_path,
        """
        from runner.entry import exit_now
        with open(sys.argv[2], "w") as fh:
            fh.write("done")
        print("last words", flush=False)
        exit_now(4)
        """,
        str(tmp_path / "out.txt"),
    )
    assert proc.returncode == 4
    assert proc.stdout == "last words\n"  # the unflushed stdout was flushed first
    assert (tmp_path / "out.txt").read_text() == "done"
    assert not cleaned_up


def test_a_file_still_open_for_writing_means_the_ordinary_exit(tmp_path: Path) -> None:
    """A buffered write not yet flushed would be lost by os._exit: the ordinary exit keeps it."""
    proc, cleaned_up = child(
        tmp_path,
        """
        from runner.entry import exit_now
        left_open = open(sys.argv[2], "w")
        left_open.write("still in the buffer")
        exit_now(3)
        """,
        str(tmp_path / "out.txt"),
    )
    assert proc.returncode == 3
    assert (tmp_path / "out.txt").read_text() == "still in the buffer"
    assert cleaned_up


def test_atexit_handlers_and_other_threads_finish_before_the_exit(tmp_path: Path) -> None:
    proc, cleaned_up = child(
        tmp_path,
        """
        import atexit, threading, time
        from runner.entry import exit_now

        def late():
            time.sleep(0.3)
            Path(sys.argv[2]).write_text("the thread finished")

        threading.Thread(target=late).start()
        atexit.register(lambda: Path(sys.argv[3]).write_text("atexit ran"))
        exit_now(0)
        """,
        str(tmp_path / "thread.txt"),
        str(tmp_path / "atexit.txt"),
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "thread.txt").read_text() == "the thread finished"
    assert (tmp_path / "atexit.txt").read_text() == "atexit ran"
    assert not cleaned_up


# --- the console script end to end ---------------------------------------------------------

ENTRY = """
from runner.entry import main
sys.argv = ["runner", *sys.argv[2:]]
main()
"""


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(seed=1)


def test_a_run_ends_at_once_with_every_file_complete(tmp_path: Path, sim: SimulatorServer) -> None:
    data = tmp_path / "tickets.csv"
    pl.DataFrame({"id": [f"t{i}" for i in range(40)], "text": ["refund"] * 40}).write_csv(data)
    out = tmp_path / "out"
    proc, cleaned_up = child(
        tmp_path,
        ENTRY,
        "run", str(data), "--deployment", "d", "--variant", "a", "--variant", "b",
        "--base-url", sim.base_url, "--out", str(out), "--concurrency", "4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not cleaned_up
    results = read_results(out)
    assert results.height == 80
    assert (results["status"] == "ok").all()
    manifest = read_manifest(out)
    assert manifest["status"] == "complete"
    assert manifest["counts"] == {"ok": 80, "error": 0}
    assert (out / "report.html").stat().st_size > 0


def test_a_refused_input_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    proc, cleaned_up = child(
        tmp_path,
        ENTRY,
        "run", str(tmp_path / "missing.csv"), "--deployment", "d", "--variant", "a",
        "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert not cleaned_up


def test_the_console_script_does_not_load_httpx_command_line_client(tmp_path: Path) -> None:
    """httpx would import its CLI (rich's syntax highlighting, pygments) with itself: not here."""
    proc, _ = child(
        tmp_path,
        """
        import atexit
        from runner.entry import main

        report = Path(sys.argv[2])

        def loaded():
            names = [m for m in ("httpx", "pygments") if sys.modules.get(m) is not None]
            report.write_text(" ".join(names))

        atexit.register(loaded)
        sys.argv = ["runner", "run", "--help"]
        main()
        """,
        str(tmp_path / "loaded.txt"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "--deployment" in proc.stdout
    assert (tmp_path / "loaded.txt").read_text() == "httpx"


def test_the_console_script_asks_polars_to_return_freed_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runner import entry

    monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    entry.tune_allocators()
    assert os.environ["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:0,muzzy_decay_ms:0"
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "narenas:1")
    entry.tune_allocators()
    assert os.environ["_RJEM_MALLOC_CONF"] == "narenas:1"  # the user's setting wins
