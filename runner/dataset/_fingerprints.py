"""What a dataset's bytes were: one fingerprint for the whole dataset, and one per file.

The combined fingerprint says whether a resume reads the same data; the per-file digests say
which files changed, appeared or went missing (:func:`dataset_changes`). Both come from one
read of each file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from runner.dataset._files import Format, root, show
from runner.errors import InputError

__all__ = ["dataset_changes", "fingerprint", "fingerprints"]

_CHUNK: Final = 1 << 20


def fingerprints(files: Sequence[Path], fmt: Format) -> tuple[str, dict[str, str]]:
    """The dataset's fingerprint, and each file's digest by its path below the files' root.

    The fingerprint is blake2b (hex, 32 bytes) over the format and each file's name (relative
    to the files' root), size and bytes, so it does not depend on where the folder lives. A
    file's digest is blake2b (hex, 32 bytes) over its bytes alone: ``b2sum -l 256`` prints it.
    Both are keyed by location-independent names, so a shard run from another working directory
    (or a resume with an absolute path) records the same fingerprints.
    """
    combined = hashlib.blake2b(digest_size=32)
    combined.update(f"runner-dataset-v1\0{fmt}\0".encode())
    base = root(files)
    per_file: dict[str, str] = {}
    for path in files:
        relative = path.relative_to(base).as_posix()
        name = relative.encode()
        # Lengths first, so that no two different file lists can hash the same stream.
        combined.update(len(name).to_bytes(8, "big") + name)
        own = hashlib.blake2b(digest_size=32)
        try:
            combined.update(path.stat().st_size.to_bytes(8, "big"))
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    combined.update(chunk)
                    own.update(chunk)
        except OSError as exc:
            raise InputError(f"{show(path)}: cannot read the file: {exc.strerror}") from exc
        per_file[relative] = own.hexdigest()
    return combined.hexdigest(), per_file


def fingerprint(files: Sequence[Path], fmt: Format) -> str:
    """The dataset's fingerprint alone (see :func:`fingerprints`)."""
    return fingerprints(files, fmt)[0]


def dataset_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """How the files went from ``old`` to ``new`` (path → digest), one line per file.

    Lines read ``changed: PATH``, then ``added: PATH``, then ``missing: PATH``, each group
    sorted by path; the same files with the same digests give no lines.
    """
    changed = sorted(path for path in old.keys() & new.keys() if old[path] != new[path])
    added = sorted(new.keys() - old.keys())
    missing = sorted(old.keys() - new.keys())
    return (
        [f"changed: {path}" for path in changed]
        + [f"added: {path}" for path in added]
        + [f"missing: {path}" for path in missing]
    )
