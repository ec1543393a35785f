"""Provenance: one type read from the manifest, carried by every report and gate file under
one Parquet key."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from runner.store import Manifest, RunDir, read_provenance, with_provenance


def _run(tmp_path: Path) -> RunDir:
    rundir = RunDir(tmp_path / "out")
    rundir.root.mkdir()
    manifest = Manifest(
        run_id="r1", config={"deployment": "support", "variants": ["a", "b"], "repeat": 2}
    )
    rundir.write_manifest(manifest)
    return rundir


def test_the_provenance_of_a_run_is_read_from_its_manifest(tmp_path: Path) -> None:
    prov = _run(tmp_path).provenance()
    assert (prov.run_id, prov.deployment, prov.variants, prov.repeat) == (
        "r1", "support", ("a", "b"), 2,
    )  # fmt: skip
    assert prov.scorer is None and prov.generated_at is None
    report = prov.for_report(
        ["b", "a"], "b", "exact", report_versions={"runner": "1"}, generated_at="now"
    )
    assert (report.variants, report.baseline, report.scorer) == (("b", "a"), "b", "exact")
    assert report.run_id == "r1" and report.as_dict()["out_dir"] == str(tmp_path / "out")


def test_a_parquet_file_carries_its_provenance_under_one_key(tmp_path: Path) -> None:
    prov = _run(tmp_path).provenance().scored_by("exact")
    path = tmp_path / "summary.parquet"
    pq.write_table(with_provenance(pa.table({"x": [1]}), prov), path)
    metadata = pq.read_schema(path).metadata or {}
    assert json.loads(metadata[b"runner.provenance"])["scorer"] == "exact"
    assert read_provenance(path)["run_id"] == "r1"


def test_files_written_under_the_mistaken_key_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "gate.parquet"
    table = pa.table({"x": [1]}).replace_schema_metadata(
        {b"runner.store._provenance": json.dumps({"run_id": "old"}).encode()}
    )
    pq.write_table(table, path)
    assert read_provenance(path) == {"run_id": "old"}
    pq.write_table(pa.table({"x": [1]}), path)
    assert read_provenance(path) == {}
