"""No symlink is followed inside OUT (issue 21, point 3): a link where the lock, the journal, the
rejected lines or the manifest belong is refused with exit 2 naming it, and the file it points
to is left byte for byte as it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.errors import ResultsDirError
from runner.store._fsutil import atomic_write_json, atomic_write_text
from runner.store._journal import Journal, cut_torn_tail
from runner.store._manifest import MANIFEST
from runner.store._recovery import recover_journal
from runner.store._rundir import JOURNAL, LOCK_NAME, REJECTED, RunDir
from tests.export_helpers import digest, make_run

#: The victim's bytes: a last line without its newline, which a journal repair would cut.
VICTIM = b'{"precious": 1}\n{"precious": 2}\nno newline at the end'


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    pl.DataFrame({"question": [f"q{i}" for i in range(6)]}).write_csv(path)
    return path


@pytest.fixture
def run_dir(tmp_path: Path, dataset: Path) -> Path:
    return make_run(dataset, tmp_path / "out", "a")


def plant(run_dir: Path, name: str, tmp_path: Path) -> Path:
    """Put a symlink to a victim file where ``name`` belongs; return the victim."""
    victim = tmp_path / f"victim-{name.strip('.')}"
    link = run_dir / name
    if name == MANIFEST:  # a manifest a reader would accept, so only the link can stop it
        shutil.copy(link, victim)
    else:
        victim.write_bytes(VICTIM)
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    return victim


def damage_journal(run_dir: Path) -> None:
    with (run_dir / JOURNAL).open("ab") as fh:
        fh.write(b"this line is not json\n")


NAMES = [LOCK_NAME, JOURNAL, REJECTED, MANIFEST]


@pytest.mark.parametrize("name", NAMES)
def test_runner_report_refuses_a_symlink_and_leaves_its_victim_unchanged(
    tmp_path: Path, run_dir: Path, name: str
) -> None:
    damage_journal(run_dir)
    victim = plant(run_dir, name, tmp_path)
    before = digest(victim)
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert name in result.output and "symbolic link" in result.output
    assert digest(victim) == before
    assert (run_dir / name).is_symlink()


@pytest.mark.parametrize("name", NAMES)
def test_a_resume_refuses_a_symlink_and_leaves_its_victim_unchanged(
    tmp_path: Path, run_dir: Path, dataset: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    damage_journal(run_dir)
    victim = plant(run_dir, name, tmp_path)
    before = digest(victim)
    monkeypatch.setenv("FETCH_HIVE_API_KEY", "k")
    args: list[Any] = [
        "run", str(dataset), "-d", "backfill", "-v", "a", "--input-column", "question",
        "--base-url", "http://127.0.0.1:9/v1", "--out", str(run_dir), "--resume",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert name in result.output and "symbolic link" in result.output
    assert digest(victim) == before


def test_check_no_symlinks_names_the_link_and_reads_nothing(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    rundir.check_no_symlinks()  # an empty directory is fine
    (tmp_path / "summary.parquet").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ResultsDirError, match=r"summary\.parquet is a symbolic link"):
        rundir.check_no_symlinks()
    with pytest.raises(ResultsDirError, match=r"summary\.parquet"), rundir.locked():
        pass
    assert not (tmp_path / LOCK_NAME).exists()  # refused before the lock file was made


def test_the_journal_is_never_opened_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    link = tmp_path / JOURNAL
    link.symlink_to(victim)
    with pytest.raises(ResultsDirError, match=r"journal\.jsonl is a symbolic link"):
        Journal(link)
    with pytest.raises(ResultsDirError, match=r"journal\.jsonl"):
        cut_torn_tail(link)
    assert victim.read_bytes() == VICTIM


def test_rejected_lines_are_never_appended_through_a_link(tmp_path: Path) -> None:
    journal = tmp_path / JOURNAL
    journal.write_bytes(b"not json\n")
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    (tmp_path / REJECTED).symlink_to(victim)
    with pytest.raises(ResultsDirError, match=r"journal\.rejected\.jsonl"):
        recover_journal(journal)
    assert victim.read_bytes() == VICTIM
    assert journal.read_bytes() == b"not json\n"  # not rewritten either


def test_an_atomic_write_over_a_link_replaces_the_link_not_its_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    target = tmp_path / "report.html"
    target.symlink_to(victim)
    atomic_write_text(target, "new")
    atomic_write_json(tmp_path / "m.json", {"a": 1})
    assert not target.is_symlink() and target.read_text(encoding="utf-8") == "new"
    assert victim.read_bytes() == VICTIM
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
