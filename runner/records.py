"""Plain value types shared by every stage: a row in, a call out, an outcome down to disk.

Data flows one way: ``Row`` (inputs.py) → ``Call`` (pipeline.py) → ``Outcome`` (client.py and
pipeline.py) → a line of the journal and a row of ``results.parquet`` (results.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

JsonScalar = str | int | float | bool | None

#: The columns that identify one result: exactly one row per key in ``results.parquet``.
KEY_COLUMNS: Final = ("row_id", "variant", "repeat")

STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"


@dataclass(frozen=True, slots=True)
class Row:
    """One dataset row, split into what is sent and what is kept for scoring."""

    row_id: str
    inputs: dict[str, Any]
    metadata: dict[str, JsonScalar] = field(default_factory=dict)
    expected: Any = None


@dataclass(frozen=True, slots=True)
class Call:
    """One unit of work: a row sent to one variant, for one repeat."""

    row: Row
    variant: str
    repeat: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.row.row_id, self.variant, self.repeat)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one successful attempt returned."""

    output: str
    reasoning: str | None = None
    model: str | None = None
    request_id: str | None = None
    http_status: int = 200
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The final outcome of one call: one journal line, one row of ``results.parquet``.

    Field names and order match :data:`RESULT_SCHEMA`; keyword-only, so what only an answer or
    only an error has can default to None. Timestamps are ISO-8601 UTC strings here and become
    Arrow timestamps when the journal is compacted.
    """

    run_id: str
    row_id: str
    variant: str
    deployment: str
    repeat: int
    status: str
    output: str | None = None
    reasoning: str | None = None
    model: str | None = None
    request_id: str | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    attempts: int
    """Every HTTP attempt of the call (a 502 or a timeout may have been billed)."""
    latency_ms: float | None = None
    total_ms: float
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    started_at: str
    finished_at: str
    inputs: str
    expected: str | None
    metadata: str | None = None
    """The row's metadata columns as a JSON object (null when the run has none)."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.row_id, self.variant, self.repeat)


#: The Arrow schema of ``results.parquet`` and of every journal line, in column order.
RESULT_SCHEMA: Final = pa.schema(
    [
        ("run_id", pa.string()),
        ("row_id", pa.string()),
        ("variant", pa.string()),
        ("deployment", pa.string()),
        ("repeat", pa.int32()),
        ("status", pa.string()),
        ("output", pa.string()),
        ("reasoning", pa.string()),
        ("model", pa.string()),
        ("request_id", pa.string()),
        ("http_status", pa.int32()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("attempts", pa.int32()),
        ("latency_ms", pa.float64()),
        ("total_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("inputs", pa.string()),  # the inputs sent, as a JSON object
        ("expected", pa.string()),  # the expected value as text, null when not given
        ("metadata", pa.string()),  # the row's metadata columns as a JSON object, or null
    ]
)

RESULT_COLUMNS: Final = tuple(RESULT_SCHEMA.names)
