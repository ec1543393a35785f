"""The backfill: the dataset handed back with its new columns, where it may go, and the
formats it is written in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.export._export import SCORE_FIELDS, check_export_columns, export_run
    from runner.export._target import check_export_target, remove_export_scratch
    from runner.export._writers import FORMATS, ExportFormat, format_of

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "ExportFormat": "runner.export._writers",
    "FORMATS": "runner.export._writers",
    "SCORE_FIELDS": "runner.export._export",
    "check_export_columns": "runner.export._export",
    "check_export_target": "runner.export._target",
    "export_run": "runner.export._export",
    "format_of": "runner.export._writers",
    "remove_export_scratch": "runner.export._target",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "FORMATS",
    "SCORE_FIELDS",
    "ExportFormat",
    "check_export_columns",
    "check_export_target",
    "export_run",
    "format_of",
    "remove_export_scratch",
]
