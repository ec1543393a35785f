"""Plain helpers shared by the test files (conftest.py holds the fixtures built on them): the
CLI driven in-process, and the small datasets the tests write again and again."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import polars as pl
from click.testing import CliRunner, Result

from runner.cli import main
from runner.simulator import SimulatorServer, reference_answer

#: The conftest factories' types, for annotating a test's parameters.
MakeSim = Callable[..., SimulatorServer]
StartRunner = Callable[..., "subprocess.Popen[bytes]"]
SmallDisk = Callable[..., Path]

#: Support tickets whose topics the simulator recognises, and the label each topic expects.
TOPICS = ("refund for invoice", "password reset", "app crash on start", "package delivery")
LABELS = ("billing", "account", "technical", "shipping")

#: No key and no base URL from the developer's shell: a test names the simulator it talks to.
CLEAN_ENV: Mapping[str, str] = {"FETCH_HIVE_API_KEY": "", "FETCH_HIVE_BASE_URL": ""}


def cli(*args: str | Path, env: Mapping[str, str] | None = None) -> Result:
    """Run ``runner ARGS`` in this process with a clean environment (``env`` adds to it).

    An exception the CLI does not turn into an exit code fails the test with its traceback.
    """
    return CliRunner().invoke(
        main, [str(a) for a in args], env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False
    )


def write_frame(path: Path, frame: pl.DataFrame) -> Path:
    """Write ``frame`` in the format ``path``'s suffix names (.csv, .parquet, .jsonl)."""
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".jsonl":
        frame.write_ndjson(path)
    else:
        frame.write_csv(path)
    return path


def write_rows(
    path: Path, n: int, *, column: str = "q", text: str = "question", **extra: Sequence[object]
) -> Path:
    """``n`` rows: ``id`` r0, r1, … and ``column`` "TEXT 0", "TEXT 1", …, plus ``extra`` columns."""
    rows = {"id": [f"r{i}" for i in range(n)], column: [f"{text} {i}" for i in range(n)]}
    return write_frame(path, pl.DataFrame({**rows, **extra}))


def write_tickets(path: Path, n: int) -> Path:
    """``n`` support tickets: ``id`` 0, 1, …, ``ticket`` text and the ``expected`` label."""
    frame = pl.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "ticket": [f"{TOPICS[i % 4]} #{i}" for i in range(n)],
            "expected": [LABELS[i % 4] for i in range(n)],
        }
    )
    return write_frame(path, frame)


#: Topics the simulator's judges and reference answers know (``reference_answer``).
GRADED_TOPICS = (
    "refund of invoice",
    "password locked",
    "app crash",
    "parcel tracking",
    "office hours",
)


def graded_tickets(n: int) -> list[str]:
    """``n`` tickets "TOPIC case i", cycling through :data:`GRADED_TOPICS`."""
    return [f"{GRADED_TOPICS[i % 5]} case {i}" for i in range(n)]


def write_graded_tickets(path: Path, tickets: Sequence[str], *, expected: bool = True) -> Path:
    """``tickets`` as rows ``t0``, ``t1``, … (``id``, ``ticket``) with the simulator's reference
    answer of each as ``expected``, unless ``expected`` is false."""
    columns: dict[str, Sequence[object]] = {
        "id": [f"t{i}" for i in range(len(tickets))],
        "ticket": tickets,
    }
    if expected:
        columns["expected"] = [reference_answer({"ticket": t}) for t in tickets]
    return write_frame(path, pl.DataFrame(columns))


def write_topic_tickets(path: Path, n: int, **extra: Sequence[object]) -> Path:
    """``n`` tickets ``t0``, ``t1``, … ("refund #0", "password #1", …) with the ``expected``
    label of each topic (LABELS), plus ``extra`` columns after ``ticket``."""
    topics = ("refund", "password", "crash", "parcel")
    columns: dict[str, Sequence[object]] = {
        "id": [f"t{i}" for i in range(n)],
        "ticket": [f"{topics[i % 4]} #{i}" for i in range(n)],
        **extra,
        "expected": [LABELS[i % 4] for i in range(n)],
    }
    return write_frame(path, pl.DataFrame(columns))
