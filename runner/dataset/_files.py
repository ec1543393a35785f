"""Finding a dataset's files, telling their format, and naming them in messages.

Files, directories and glob patterns become one sorted tuple of readable files. Every message
names a file the way the user most likely typed it (:func:`show`).
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal

from runner.errors import InputError

__all__ = [
    "EXTENSIONS",
    "Format",
    "detect_format",
    "label",
    "resolve_files",
    "root",
    "show",
    "where",
]

Format = Literal["csv", "parquet", "jsonl"]

#: The one table from a file's extension to its format: what a dataset is read as, and what
#: an export (``runner export --to``, ``--export``) is written as.
EXTENSIONS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def detect_format(paths: Iterable[Path | str]) -> Format:
    """The one format of ``paths``, told by their extensions; raise if unknown or mixed."""
    seen: dict[Format, Path] = {}
    for path in map(Path, paths):
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise InputError(
                f"{show(path)}: cannot tell the format from the extension {path.suffix!r}; "
                f"use one of {', '.join(EXTENSIONS)} or pass --input-format"
            )
        seen.setdefault(fmt, path)
    if len(seen) > 1:
        examples = ", ".join(f"{show(p)} ({f})" for f, p in seen.items())
        raise InputError(f"the dataset mixes formats: {examples}; use files of one format")
    if not seen:
        raise InputError("no dataset files given")
    return next(iter(seen))


def resolve_files(specs: Sequence[str], input_format: str) -> tuple[Path, ...]:
    """Expand files, directories and globs into one sorted tuple of readable files."""
    found: dict[Path, None] = {}  # insertion-ordered set: a file named twice is read once
    for spec in specs:
        for path in _expand(spec, input_format):
            found.setdefault(path.resolve(), None)
    files = tuple(sorted(found))
    for path in files:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"{show(path)}: cannot read the file: {exc.strerror}") from exc
    return files


def _expand(spec: str, input_format: str) -> list[Path]:
    spec = os.path.expanduser(spec)
    if any(char in spec for char in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
        files = [p for p in matches if p.is_file()]
        if not files:
            raise InputError(f"{spec}: no files match this pattern")
        return files
    path = Path(spec)
    if path.is_dir():
        return _directory_files(path, input_format)
    if not path.exists():
        raise InputError(f"{spec}: no such file or directory")
    return [path]


def _directory_files(directory: Path, input_format: str) -> list[Path]:
    """Data files under ``directory``, skipping hidden and ``_``-prefixed entries (``_SUCCESS``)."""
    files = []
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if not path.is_file() or any(part.startswith((".", "_")) for part in parts):
            continue
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is not None and input_format in ("auto", fmt):
            files.append(path)
    if not files:
        kind = "data" if input_format == "auto" else input_format
        raise InputError(
            f"{show(directory)}: the directory holds no {kind} files "
            f"(looked for {', '.join(EXTENSIONS)})"
        )
    return files


def spec_reading(specs: Sequence[str], path: Path) -> str | None:
    """The first of ``specs`` under which a file written at ``path`` (or a folder of part files
    there) would be read as data by :func:`resolve_files`: a directory holding it (not through
    a hidden or ``_`` entry) or a glob matching it. None when no spec would read it."""
    target = Path(os.path.realpath(os.path.expanduser(path)))
    for spec in specs:
        given = Path(os.path.expanduser(spec))
        if any(char in spec for char in "*?["):
            fixed = list(itertools.takewhile(lambda p: not any(c in p for c in "*?["), given.parts))
            root = os.path.realpath(Path(*fixed)) if fixed else os.path.realpath(".")
            pattern = os.path.join(root, *given.parts[len(fixed) :])
            parts = [target / f"part-00000{ext}" for ext in EXTENSIONS]
            if any(fnmatch.fnmatch(str(t), pattern) for t in (target, *parts)):
                return spec  # fnmatch's * also crosses folders: a cautious match
        elif given.is_dir():
            folder = Path(os.path.realpath(given))
            inside = target.relative_to(folder).parts if folder in target.parents else None
            if inside and not any(part.startswith((".", "_")) for part in inside):
                return spec
    return None


def show(path: Path) -> str:
    """A path as the user most likely typed it: relative to the working directory if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def where(files: Sequence[Path]) -> str:
    """The dataset named in a message: its first file, and how many more there are."""
    more = len(files) - 1
    return show(files[0]) + (f" (and {more} more file{'s' if more > 1 else ''})" if more else "")


def root(files: Sequence[Path]) -> Path:
    """The deepest directory that holds every file."""
    return Path(os.path.commonpath([path.parent for path in files]))


def label(files: Sequence[Path], path: Path) -> str:
    """How a location names its file after a message has named the dataset: by the path
    below the dataset's root, or not at all when there is one file."""
    return f"{path.relative_to(root(files)).as_posix()} " if len(files) > 1 else ""
