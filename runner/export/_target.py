"""Where an export may go, and the scratch a killed export leaves behind.

An export never lands on a file of its own dataset, never inside its run directory ``OUT``
(apart from the runner's own ``OUT/export.<format>``), never on or above either of them, and
never over an existing file or folder unless asked (``overwrite``). :func:`check_export_target`
says so before anything is read or written.

The export is written under a temporary name beside its target and renamed into place; its
outcome join works in ``OUT/.export-*``. A killed export leaves both behind:
:func:`remove_export_scratch` removes them (the next export of the run calls it, and so should
a resume). A scratch folder beside the target is removed only when it carries the mark of this
run (:data:`MARK`, holding ``OUT``'s real path), so an export never deletes what another run's
export is writing there.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from runner.dataset import spec_reading
from runner.errors import ConfigError, StorageError
from runner.store import RunDir, describe_os_error

__all__ = [
    "MARK",
    "PARTS_MARK",
    "check_export_target",
    "is_own_export",
    "mark_scratch",
    "remove_export_scratch",
    "scratch_prefix",
]

#: The file inside an export's temporary folder that names the run directory it belongs to.
MARK: Final = ".runner-export"
#: The file inside a folder of part files that says an export wrote it: only such a folder may
#: be replaced (``--overwrite``). Hidden, so readers of ``*.parquet`` or a dataset folder skip it.
PARTS_MARK: Final = ".runner-export-parts"
#: The outcome join's scratch folders inside ``OUT``.
JOIN_SCRATCH_PREFIX: Final = ".export-"
#: The formats whose default target ``OUT/export.<format>`` is the runner's own file.
_OWN_FORMATS: Final = ("parquet", "csv", "jsonl")


def scratch_prefix(target: Path) -> str:
    """The name prefix of the temporary folder an export to ``target`` is written in."""
    return f".{target.name}.export-"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def is_own_export(out_dir: Path, to: Path) -> bool:
    """Whether ``to`` is one of the runner's default targets ``OUT/export.<format>``."""
    own = {_real(RunDir(out_dir).export(fmt)) for fmt in _OWN_FORMATS}
    return _real(to) in own


def check_export_target(
    out_dir: Path,
    to: Path,
    *,
    dataset_files: Sequence[Path],
    overwrite: bool,
    option: str = "--to",
    dataset_specs: Sequence[str] = (),
) -> None:
    """Refuse an export target that could destroy data, with :class:`ConfigError` (exit 2)
    naming ``option`` (``--to``, or ``--export`` on ``runner run``).

    Refused: a file of the dataset (by real path, or the same file under another name), a path
    the dataset's folders or globs (``dataset_specs``) would read as data, a path
    inside ``OUT`` other than ``OUT/export.<format>``, a folder holding ``OUT`` or a dataset
    file, an existing file or folder unless ``overwrite``, and, even with ``overwrite``, a
    folder that is not an earlier export's parts (``part-NNNNN.<ext>`` files and the
    :data:`PARTS_MARK` an export leaves, nothing else): a run directory, or any folder of the
    user's, even one of part files. Reads nothing, writes nothing.
    """
    target = _real(to)
    out = _real(out_dir)
    for source in dataset_files:
        real = _real(source)
        if target == real or _same_file(to, source):
            raise ConfigError(
                f"{option} {to} is a file of the run's dataset; the export would replace its own "
                "input. Name another file"
            )
        if _within(real, target):
            raise ConfigError(f"{option} {to} holds the dataset file {source}; name another path")
    reader = spec_reading(dataset_specs, to)
    if reader is not None:
        raise ConfigError(
            f"{option} {to}: the dataset {reader} would read it as data, so the next read (a "
            "resume, an export) would find the dataset changed; name a path outside it"
        )
    if _within(out, target):
        raise ConfigError(f"{option} {to} holds the run directory {out_dir}; name another path")
    if _within(target, out) and not is_own_export(out_dir, to):
        raise ConfigError(
            f"{option} {to} is inside the run directory {out_dir}, whose files belong to the "
            "runner; name a path outside it (or OUT/export.<format> itself)"
        )
    if not overwrite and (to.exists() or to.is_symlink()):
        kind = "folder" if to.is_dir() else "file"
        raise ConfigError(f"{option} {to}: the {kind} exists; pass --overwrite to replace it")
    if to.is_dir() and not to.is_symlink():
        entries = sorted(to.iterdir())
        foreign = next((p for p in entries if not _is_part(p) and p.name != PARTS_MARK), None)
        if foreign is None and entries and not (to / PARTS_MARK).is_file():
            foreign = entries[0]  # part files with no mark: a folder of the user's (Spark, Dask)
        if foreign is not None:
            raise ConfigError(
                f"{option} {to}: the folder holds {foreign.name}, which no export wrote "
                f"(only a folder an export wrote, marked by its {PARTS_MARK} file, may be "
                "replaced); name another path, or empty the folder yourself"
            )


def _is_part(path: Path) -> bool:
    """Whether ``path`` is a part file an export writes (``part-00001.csv``)."""
    stem, _, ext = path.name.partition(".")
    number = stem.removeprefix("part-")
    return (
        path.is_file() and not path.is_symlink() and stem.startswith("part-")
        and number.isdigit() and len(number) == 5 and ext in ("parquet", "csv", "jsonl")
    )  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def mark_scratch(folder: Path, out_dir: Path) -> None:
    """Put this run's mark into an export's temporary folder (see :func:`remove_export_scratch`)."""
    (folder / MARK).write_text(str(_real(out_dir)), encoding="utf-8")


def remove_export_scratch(out_dir: Path, to: Path | None = None) -> list[Path]:
    """Remove what killed exports of run ``out_dir`` left; return what was removed.

    Inside ``OUT``: the outcome join's ``.export-*`` folders. Beside ``to`` (when given): the
    temporary ``.<name>.export-*`` folders of an export to ``to`` that carry this run's mark.
    Never follows a symlink. Call it while holding ``OUT``'s lock, so no export is live.
    """
    removed: list[Path] = []
    out = Path(out_dir)
    for entry in _entries(out):
        if entry.name.startswith(JOIN_SCRATCH_PREFIX) and _is_dir(entry):
            _remove(entry)
            removed.append(entry)
    if to is not None:
        prefix = scratch_prefix(to)
        for entry in _entries(to.parent):
            if entry.name.startswith(prefix) and _is_dir(entry) and _marked(entry, out):
                _remove(entry)
                removed.append(entry)
    return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {describe_os_error(exc)}") from exc


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _marked(folder: Path, out_dir: Path) -> bool:
    mark = folder / MARK
    try:
        if not stat.S_ISREG(mark.lstat().st_mode):
            return False
        return mark.read_text(encoding="utf-8") == str(_real(out_dir))
    except (OSError, UnicodeDecodeError):
        return False


def _remove(folder: Path) -> None:
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot remove {folder}: {describe_os_error(exc)}") from exc
