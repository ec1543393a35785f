"""Rows in: the dataset's files found, its columns given roles, its rows streamed and
checked (each problem named by file, row and column), and its fingerprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.dataset._checks import id_strings
    from runner.dataset._dataset import Dataset, open_dataset
    from runner.dataset._files import EXTENSIONS, Format, show, spec_reading
    from runner.dataset._fingerprints import dataset_changes
    from runner.dataset._readers import read_batches
    from runner.dataset._values import json_values

# Names load on first use: the door costs nothing until a name is taken through it.
_EXPORTS = {
    "Dataset": "runner.dataset._dataset",
    "dataset_changes": "runner.dataset._fingerprints",
    "id_strings": "runner.dataset._checks",
    "json_values": "runner.dataset._values",
    "open_dataset": "runner.dataset._dataset",
    "read_batches": "runner.dataset._readers",
    "show": "runner.dataset._files",
    "EXTENSIONS": "runner.dataset._files",
    "spec_reading": "runner.dataset._files",
    "Format": "runner.dataset._files",
}


if not TYPE_CHECKING:  # type checkers see the names imported above, nothing else
    from runner import door_getattr

    __getattr__ = door_getattr(__name__, _EXPORTS)


__all__ = [
    "EXTENSIONS",
    "Dataset",
    "Format",
    "dataset_changes",
    "id_strings",
    "json_values",
    "open_dataset",
    "read_batches",
    "show",
    "spec_reading",
]
