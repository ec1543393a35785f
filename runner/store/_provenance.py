"""Provenance: what a file of a run was made from. One type, :class:`Provenance`, read from
the run's manifest (``RunDir(out).provenance()``); the reports add the scorer, the baseline
and when and with what they were built (:meth:`Provenance.for_report`). Every Parquet file
the reports and gates write carries it as key-value metadata under :data:`PROVENANCE_KEY`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from runner.store._manifest import Manifest

#: Parquet key-value metadata of every report and gate file: its provenance, as JSON.
PROVENANCE_KEY: Final = b"runner.provenance"
#: The key written by mistake for a while (0.x, when the package moved); still read.
_MISTAKEN_KEY: Final = b"runner.store._provenance"


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """The Python version and each named distribution's version (``unknown`` if missing)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


@dataclass(frozen=True, slots=True)
class Provenance:
    """A run as its manifest describes it, and (for a report) how the report read it."""

    out_dir: Path
    run_id: str | None
    status: str | None
    deployment: str | None
    variants: tuple[str, ...]
    repeat: int | None
    dataset_fingerprint: str | None
    started_at: str | None
    finished_at: str | None
    versions: Mapping[str, Any]
    config: Mapping[str, Any]
    scorer: str | None = None
    baseline: str | None = None
    report_versions: Mapping[str, str] = field(default_factory=dict)
    generated_at: str | None = None

    @classmethod
    def of(cls, manifest: Manifest, out_dir: Path) -> Provenance:
        """The run in ``out_dir`` as its manifest describes it."""
        return cls(
            out_dir=out_dir,
            run_id=manifest.run_id,
            status=manifest.status.value,
            deployment=manifest.deployment,
            variants=tuple(manifest.variants),
            repeat=manifest.config.get("repeat"),
            dataset_fingerprint=manifest.fingerprint.dataset,
            started_at=(
                manifest.sessions[0].started_at if manifest.sessions else manifest.created_at
            ),
            finished_at=manifest.finished_at,
            versions=manifest.versions,
            config=manifest.config,
        )

    def scored_by(self, scorer: str | None) -> Provenance:
        return dataclasses.replace(self, scorer=scorer)

    def for_report(
        self,
        variants: Sequence[str],
        baseline: str,
        scorer: str | None,
        *,
        report_versions: Mapping[str, str],
        generated_at: str,
    ) -> Provenance:
        """The provenance a report carries: the variants in its order, its baseline variant,
        its scorer, and the versions and time it was built with."""
        return dataclasses.replace(
            self,
            variants=tuple(variants),
            baseline=baseline,
            scorer=scorer,
            report_versions=report_versions,
            generated_at=generated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        """Every field, the run directory as text (what the files and the HTML carry)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return values | {"out_dir": str(self.out_dir)}


TableOrSchema = TypeVar("TableOrSchema", pa.Table, pa.Schema)


def with_provenance(
    table: TableOrSchema, provenance: Provenance | Mapping[str, Any]
) -> TableOrSchema:
    """``table`` (or a schema) carrying ``provenance`` as JSON under :data:`PROVENANCE_KEY`."""
    value = provenance.as_dict() if isinstance(provenance, Provenance) else provenance
    encoded = json.dumps(value, default=str).encode("utf-8")
    metadata = {PROVENANCE_KEY: encoded}
    if isinstance(table, pa.Schema):
        return table.with_metadata(metadata)
    return table.replace_schema_metadata(metadata)


def read_provenance(path: Path) -> dict[str, Any]:
    """The provenance a Parquet file carries (``{}`` if none)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY) or metadata.get(_MISTAKEN_KEY)
    value = json.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}
