"""The journal keeps its promises under faults: torn and damaged lines, short writes, full disks.

Every test writes real files under ``tmp_path``; faults are injected by writing damaged bytes,
by replacing ``os.write`` for the journal's descriptor, or (as root) by a real full tmpfs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from pathlib import Path

import polars as pl
import pytest

from runner.errors import StorageError
from runner.records import RESULT_COLUMNS, Outcome
from runner.store import _journal as journal
from runner.store import _recovery as recovery
from runner.store._fsutil import atomic_write, atomic_write_text, remove_stale_temps
from runner.store._memory import MemoryPlan
from runner.store._results import (
    JOURNAL,
    REJECTED,
    RESULTS,
    Journal,
    compact,
    key_frame,
    read_done_keys,
    recover_journal,
)
from tests.support import SmallDisk


def outcome(row_id: str, output: str = "out") -> Outcome:
    return Outcome(
        run_id="r", row_id=row_id, variant="a", deployment="d", repeat=0, status="ok",
        output=output, reasoning=None, model="m", request_id=None, http_status=200,
        error_type=None, error_message=None, attempts=1, latency_ms=1.0, total_ms=1.0,
        ttft_ms=None, prompt_tokens=1, completion_tokens=2, total_tokens=3,
        started_at="2026-11-25T10:00:00+00:00", finished_at="2026-11-25T10:00:01+00:00",
        inputs='{"q": "x"}', expected=None,
    )  # fmt: skip


def line(row_id: str) -> bytes:
    """A valid journal line, exactly as Journal.append writes it."""
    record = {name: getattr(outcome(row_id), name) for name in RESULT_COLUMNS}
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def write_journal(out: Path, *parts: bytes) -> Path:
    path = out / JOURNAL
    path.write_bytes(b"".join(parts))
    return path


def done_ids(out: Path, row_ids: list[str]) -> list[str]:
    """Which of ``row_ids`` (variant a, repeat 0) read_done_keys says are done."""
    done = read_done_keys(out, retry_errors=False)
    mask = done.contains(key_frame(row_ids, ["a"] * len(row_ids), [0] * len(row_ids)))
    return [row_id for row_id, hit in zip(row_ids, mask, strict=True) if hit]


def rejected_records(out: Path) -> list[dict[str, object]]:
    return [json.loads(text) for text in (out / REJECTED).read_text().splitlines()]


# --- recovery: a torn tail ---------------------------------------------------------------------


def test_a_torn_tail_is_cut_and_the_good_lines_stay(tmp_path: Path) -> None:
    torn = b'{"row_id":"r4","variant":"a","rep'
    path = write_journal(tmp_path, line("r1"), line("r2"), line("r3"), torn)
    recovery = recover_journal(path)
    assert recovery.torn_bytes == len(torn)
    assert recovery.rejected_lines == ()
    assert recovery.rejected_path is None
    assert path.read_bytes() == line("r1") + line("r2") + line("r3")
    assert not (tmp_path / REJECTED).exists()
    assert done_ids(tmp_path, ["r1", "r2", "r3", "r4"]) == ["r1", "r2", "r3"]
    assert compact(tmp_path, ("a",)) == {"ok": 3}
    assert pl.read_parquet(tmp_path / RESULTS)["row_id"].to_list() == ["r1", "r2", "r3"]


def test_read_done_keys_skips_an_unterminated_last_line_even_before_recovery(
    tmp_path: Path,
) -> None:
    write_journal(tmp_path, line("r1"), line("r2")[:-20])
    assert done_ids(tmp_path, ["r1", "r2"]) == ["r1"]


def test_compact_skips_an_unterminated_last_line_even_before_recovery(tmp_path: Path) -> None:
    write_journal(tmp_path, line("r1"), line("r2")[:-20])
    assert compact(tmp_path, ("a",)) == {"ok": 1}


def test_opening_a_journal_with_a_torn_tail_does_not_glue_the_next_line_to_it(
    tmp_path: Path,
) -> None:
    path = write_journal(tmp_path, line("r1"), line("r2")[:30])
    writer = Journal(path)
    writer.append(outcome("r3"))
    writer.close()
    assert path.read_bytes() == line("r1") + line("r3")


# --- recovery: damaged lines in the middle -----------------------------------------------------

DAMAGED = {
    "garbage": b"\x00\x00garbage\xff\n",
    "cut short": b'{"row_id":"r3","vari\n',
    "not an object": b'["r3","a",0,"ok"]\n',
    "missing status": b'{"row_id":"r3","variant":"a","repeat":0}\n',
    "repeat as text": b'{"row_id":"r3","variant":"a","repeat":"zero","status":"ok"}\n',
    "row_id as number": b'{"row_id":3,"variant":"a","repeat":0,"status":"ok"}\n',
    "unparseable timestamp": line("r3").replace(b"2026-11-25T10:00:00+00:00", b"yesterday"),
    "blank": b"\n",
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_middle_line_is_set_aside_and_the_rest_kept(
    tmp_path: Path, damage: bytes
) -> None:
    path = write_journal(tmp_path, line("r1"), line("r2"), damage, line("r4"), line("r5"))
    recovery = recover_journal(path)
    assert recovery.torn_bytes == 0
    assert recovery.rejected_lines == (3,)
    assert recovery.rejected_path == tmp_path / REJECTED
    assert path.read_bytes() == line("r1") + line("r2") + line("r4") + line("r5")
    text = damage[:-1].decode("utf-8", errors="replace")
    assert rejected_records(tmp_path) == [{"line": 3, "text": text}]
    assert done_ids(tmp_path, ["r1", "r2", "r3", "r4", "r5"]) == ["r1", "r2", "r4", "r5"]
    assert compact(tmp_path, ("a",)) == {"ok": 4}
    assert pl.read_parquet(tmp_path / RESULTS)["row_id"].to_list() == ["r1", "r2", "r4", "r5"]


def test_a_very_long_line_is_valid(tmp_path: Path) -> None:
    long = replace(outcome("r2"), output="é" * 1_500_000)  # 3 MB, more than a piece
    writer = Journal(tmp_path / JOURNAL)
    for item in (outcome("r1"), long, outcome("r3")):
        writer.append(item)
    writer.close()
    assert recover_journal(tmp_path / JOURNAL).messages() == []
    assert done_ids(tmp_path, ["r1", "r2", "r3"]) == ["r1", "r2", "r3"]


def test_damage_and_a_torn_tail_together_keep_line_numbers_of_the_journal_as_it_was(
    tmp_path: Path,
) -> None:
    path = write_journal(
        tmp_path, b"junk\n", line("r2"), b'{"row_id":"r3"\n', line("r4"), line("r5")[:9]
    )
    recovery = recover_journal(path)
    assert (recovery.torn_bytes, recovery.rejected_lines) == (9, (1, 3))
    assert [r["line"] for r in rejected_records(tmp_path)] == [1, 3]
    assert path.read_bytes() == line("r2") + line("r4")


def test_recovery_messages_say_one_thing_per_line(tmp_path: Path) -> None:
    path = write_journal(tmp_path, line("r1"), b"junk\n", line("r3"), b"{")
    assert recover_journal(path).messages() == [
        "journal.jsonl: its last line was cut short by a crash (1 byte removed); "
        "its call will be sent again",
        "journal.jsonl: line 2 was damaged; set aside in journal.rejected.jsonl, "
        "its call will be sent again",
    ]


def test_recovering_twice_changes_nothing(tmp_path: Path) -> None:
    path = write_journal(tmp_path, line("r1"), b"junk\n", line("r3"), b'{"row')
    recover_journal(path)
    journal_bytes, rejected_bytes = path.read_bytes(), (tmp_path / REJECTED).read_bytes()
    again = recover_journal(path)
    assert (again.torn_bytes, again.rejected_lines, again.rejected_path) == (0, (), None)
    assert again.messages() == []
    assert path.read_bytes() == journal_bytes
    assert (tmp_path / REJECTED).read_bytes() == rejected_bytes


def test_a_clean_journal_is_not_rewritten(tmp_path: Path) -> None:
    path = write_journal(tmp_path, line("r1"), line("r2"))
    before = path.stat()
    recovery = recover_journal(path)
    after = path.stat()
    assert recovery.messages() == []
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino, before.st_mtime_ns, before.st_size,
    )  # fmt: skip
    assert not (tmp_path / REJECTED).exists()


def test_a_missing_or_empty_journal_needs_no_recovery(tmp_path: Path) -> None:
    assert recover_journal(tmp_path / JOURNAL).messages() == []
    assert recover_journal(write_journal(tmp_path)).messages() == []


def test_bad_lines_are_found_and_numbered_across_many_pieces(tmp_path: Path) -> None:
    pieces = MemoryPlan(piece_bytes=4 * len(line("r0")))  # ~4 lines a piece
    bad = {7, 8, 23, 64}
    parts = [b"junk %d\n" % n if n in bad else line(f"r{n}") for n in range(1, 81)]
    path = write_journal(tmp_path, *parts)
    assert recover_journal(path, memory=pieces).rejected_lines == tuple(sorted(bad))
    assert path.read_bytes() == b"".join(p for n, p in enumerate(parts, 1) if n not in bad)


def test_a_clean_journal_is_checked_a_piece_at_a_time_not_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_journal(tmp_path, *(line(f"r{n}") for n in range(100)))
    parsed: list[int] = []
    real = journal.parse_piece  # the function recovery imported from the journal

    def counting(piece: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        parsed.append(piece.count(b"\n"))
        return real(piece, schema)

    monkeypatch.setattr(recovery, "parse_piece", counting)
    recover_journal(path, memory=MemoryPlan(piece_bytes=10 * len(line("r0"))))
    assert sum(parsed) == 100 and 10 <= len(parsed) <= 11


#: Compaction sizes that make a journal of a few dozen lines take the merged path.
SMALL_RUNS = MemoryPlan(one_piece_bytes=1000, piece_bytes=1000, run_rows=4)


def test_a_recovered_journal_compacts_in_merged_runs_to_the_undamaged_keys(
    tmp_path: Path,
) -> None:
    parts = [b"junk\n" if n % 7 == 0 else line(f"r{n}") for n in range(1, 41)]
    recover_journal(write_journal(tmp_path, *parts, b'{"row_id":"r41"'))
    kept = sorted(f"r{n}" for n in range(1, 41) if n % 7)  # text ids sort as text
    assert compact(tmp_path, ("a",), memory=SMALL_RUNS) == {"ok": len(kept)}
    assert pl.read_parquet(tmp_path / RESULTS)["row_id"].to_list() == kept


# --- readers never leak a polars error ---------------------------------------------------------


def test_read_done_keys_on_an_unrecovered_damaged_journal_raises_storage_error(
    tmp_path: Path,
) -> None:
    write_journal(tmp_path, line("r1"), b'{"row_id":"r3","vari\n', line("r2"))
    with pytest.raises(StorageError, match=f"cannot read {tmp_path / JOURNAL}: "):
        read_done_keys(tmp_path, retry_errors=False)


def test_compact_on_an_unrecovered_damaged_journal_raises_storage_error(tmp_path: Path) -> None:
    write_journal(tmp_path, line("r1"), b"junk\n", line("r2"))
    with pytest.raises(StorageError, match=str(tmp_path / JOURNAL)):
        compact(tmp_path, ("a",))
    assert not (tmp_path / RESULTS).exists()


def test_compact_in_merged_runs_on_an_unrecovered_damaged_journal_raises_storage_error(
    tmp_path: Path,
) -> None:
    write_journal(tmp_path, *(line(f"r{n}") for n in range(20)), b"junk\n", line("r21"))
    with pytest.raises(StorageError, match=f"cannot read {tmp_path / JOURNAL}: a line is damaged"):
        compact(tmp_path, ("a",), memory=SMALL_RUNS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOURNAL]  # no scratch, no temp


def test_compact_turns_an_os_error_into_storage_error_naming_the_file(tmp_path: Path) -> None:
    write_journal(tmp_path, line("r1"))
    (tmp_path / RESULTS).mkdir()  # the rename onto it fails
    with pytest.raises(StorageError, match=f"{tmp_path / RESULTS}: Is a directory"):
        compact(tmp_path, ("a",))
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOURNAL, RESULTS]  # no temp file


# --- the writer: short writes and failing writes -----------------------------------------------


def fake_write(
    monkeypatch: pytest.MonkeyPatch, fd_of: Callable[[], int], act: Callable[[int, bytes], int]
) -> None:
    """Replace os.write for the journal's descriptor only."""
    real = os.write

    def write(fd: int, data: bytes) -> int:
        return act(fd, bytes(data)) if fd == fd_of() else real(fd, data)

    monkeypatch.setattr("runner.store._journal.os.write", write)


def test_a_short_write_is_completed_into_a_whole_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Journal(tmp_path / JOURNAL)
    calls: list[int] = []

    def half(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return os.pwrite(fd, data[: max(1, len(data) // 2)], os.fstat(fd).st_size)

    fake_write(monkeypatch, lambda: writer._fd, half)
    writer.append(outcome("r1", output="x" * 100))
    monkeypatch.undo()
    writer.close()
    assert len(calls) > 3
    assert (tmp_path / JOURNAL).read_bytes() == line("r1").replace(
        b'"out"', b'"' + b"x" * 100 + b'"'
    )
    assert done_ids(tmp_path, ["r1"]) == ["r1"]


def test_journal_fragment_is_spelled_as_the_journal_writes_it(tmp_path: Path) -> None:
    writer = Journal(tmp_path / JOURNAL)
    writer.append(outcome("r1"))
    writer.append(replace(outcome("r2"), status="error", output='"status":"ok" in an output'))
    writer.close()
    lines = (tmp_path / JOURNAL).read_bytes().splitlines()
    ok = journal.journal_fragment("status", "ok")
    assert ok == b'"status":"ok"'
    assert [text.count(ok) for text in lines] == [1, 0]


def test_a_full_disk_while_appending_raises_storage_error_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Journal(tmp_path / JOURNAL)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fake_write(monkeypatch, lambda: writer._fd, full)
    with pytest.raises(StorageError) as raised:
        writer.append(outcome("r1"))
    assert str(raised.value) == f"cannot write {tmp_path / JOURNAL}: No space left on device"
    assert writer.appended == 0
    monkeypatch.undo()
    writer.close()


def test_an_io_error_while_syncing_raises_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Journal(tmp_path / JOURNAL)

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("runner.store._journal.os.fsync", eio)
    with pytest.raises(StorageError, match=f"cannot write {tmp_path / JOURNAL}: Input/output"):
        writer.sync()
    with pytest.raises(StorageError):
        writer.close()
    assert writer._fd == -1  # closed all the same


# --- atomic writes -----------------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_get_the_mode_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], int], mask: int, mode: int
) -> None:
    umask(mask)
    atomic_write_text(tmp_path / "manifest.json", "{}")
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == mode


def test_the_journal_and_atomic_files_share_a_mode_under_umask_022(
    tmp_path: Path, umask: Callable[[int], int]
) -> None:
    umask(0o022)
    Journal(tmp_path / JOURNAL).close()
    atomic_write_text(tmp_path / "manifest.json", "{}")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {JOURNAL: 0o644, "manifest.json": 0o644}


def test_a_failing_atomic_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def disk_full(fh: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(StorageError) as raised:
        atomic_write(target, disk_full)
    assert str(raised.value) == f"cannot write {target}: No space left on device"
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failing_rename_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def read_only(src: object, dst: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("runner.store._fsutil.os.replace", read_only)
    with pytest.raises(StorageError, match=r"manifest\.json: Read-only file system"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


# --- leftovers of a kill -9 --------------------------------------------------------------------


def test_remove_stale_temps_removes_only_our_own_leftovers(tmp_path: Path) -> None:
    ours = [tmp_path / ".results.parquet.abc.tmp", tmp_path / ".manifest.json.k2_x9.tmp"]
    for path in ours:
        path.write_text("half")
    scratch = tmp_path / ".compact-xyz"
    scratch.mkdir()
    (scratch / "run-00000.parquet").write_text("run")
    theirs = ["notes.tmp", "results.parquet", ".hidden", "data.abc.tmp", ".compact-note"]
    for name in theirs[:-1]:
        (tmp_path / name).write_text("keep")
    (tmp_path / ".compact-note").symlink_to(tmp_path / "notes.tmp")
    assert sorted(remove_stale_temps(tmp_path)) == sorted([*ours, scratch])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)
    assert remove_stale_temps(tmp_path) == []


# --- a real full disk --------------------------------------------------------------------------


@pytest.fixture
def full_disk(small_disk: SmallDisk) -> Path:
    """A 256 KiB tmpfs (needs root and permission to mount)."""
    return small_disk("256k")


def test_a_journal_on_a_real_full_disk(full_disk: Path) -> None:
    writer = Journal(full_disk / JOURNAL)
    with pytest.raises(StorageError) as raised:
        for n in range(10_000):
            writer.append(outcome(f"r{n}", output="x" * 3000))
    assert str(raised.value) == f"cannot write {full_disk / JOURNAL}: No space left on device"
    written = writer.appended
    with contextlib.suppress(StorageError):  # the last fsync may fail on a full disk too
        writer.close()
    assert 0 < written < 10_000
    recover_journal(full_disk / JOURNAL)
    ids = [f"r{n}" for n in range(written + 1)]
    assert done_ids(full_disk, ids) == ids[:written]
    with pytest.raises(StorageError) as raised:
        compact(full_disk, ("a",))
    assert str(raised.value) == f"cannot write {full_disk / RESULTS}: No space left on device"
    assert not [p for p in full_disk.iterdir() if p.name.endswith(".tmp")]


# --- the line's encoding (orjson, issue 14) ------------------------------------------------


def stdlib_line(item: Outcome) -> bytes:
    """The line as the stdlib encoder spelled it before orjson: compact, UTF-8, no ASCII escapes."""
    record = {name: getattr(item, name) for name in RESULT_COLUMNS}
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def test_the_outcome_fields_are_the_result_columns_in_order() -> None:
    """A line is the Outcome dataclass encoded as it stands: its fields must be the columns."""
    assert tuple(f.name for f in fields(Outcome)) == tuple(RESULT_COLUMNS)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"output": 'héllo "quoted" \\ back\nslash\ttab \x00\x1f \u2028 \U0001f600 日本'},
        {
            "status": "error",
            "output": None,
            "error_message": "</script> & ünïcode",
            "http_status": None,
        },
        {"latency_ms": 1e-7, "total_ms": 1e16, "ttft_ms": 0.1, "prompt_tokens": 2**62},
        {"inputs": '{"q": "x", "n": [1, 2.5, null]}', "expected": "ÿ"},
    ],
)
def test_a_line_is_byte_for_byte_the_stdlib_encoding_or_reads_back_the_same(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    item = replace(outcome("r1"), **changes)  # type: ignore[arg-type]
    encoded = journal.encode_line(item)
    # Floats may be spelled differently (1e-7 against 1e-07); everything else is identical.
    if not any(isinstance(v, float) for v in changes.values()):
        assert encoded == stdlib_line(item)
    writer = Journal(tmp_path / JOURNAL)
    writer.append(item)
    writer.close()
    assert (tmp_path / JOURNAL).read_bytes() == encoded
    back = journal.scan_journal(tmp_path / JOURNAL).collect().row(0, named=True)
    expected = {name: getattr(item, name) for name in RESULT_COLUMNS}
    for name in journal.TIMESTAMPS:
        back[name] = back[name].isoformat()
    assert back == expected


def test_a_lone_surrogate_in_an_answer_is_still_one_readable_line(tmp_path: Path) -> None:
    """A lone surrogate (JSON allows the escape \\ud800; no reader of the journal takes it) is
    written as U+FFFD: the call is committed, and recovery finds nothing damaged."""
    writer = Journal(tmp_path / JOURNAL)
    writer.append(outcome("r1", output="bad \ud800 half"))
    writer.append(outcome("r2", output="fine é"))
    writer.close()
    raw = (tmp_path / JOURNAL).read_bytes()
    assert raw.count(b"\n") == 2
    assert "\ufffd".encode() in raw.splitlines()[0]
    assert recover_journal(tmp_path / JOURNAL).rejected_lines == ()
    frame = journal.scan_journal(tmp_path / JOURNAL).collect()
    assert frame["row_id"].to_list() == ["r1", "r2"]
    assert frame["output"][1] == "fine é"
    assert frame["output"][0].startswith("bad \ufffd") and frame["output"][0].endswith(" half")
    assert done_ids(tmp_path, ["r1", "r2"]) == ["r1", "r2"]
