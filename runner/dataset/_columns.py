"""The columns of a dataset: one schema for all its files, and the role of each column.

A column is the row id, an input sent to the prompt, metadata sent alongside, or the expected
answer. Roles come from the options (``--id-column`` and friends) or from defaults, and every
column in a role is checked for a type that has a JSON form before any row is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from runner.config import RunConfig
from runner.dataset._files import Format, show, where
from runner.dataset._readers import BlockSizes, inferred_schema, reading
from runner.errors import ConfigError, InputError

__all__ = ["Roles", "dataset_schema", "used_columns"]

_DEFAULT_ID: Final = "id"


def dataset_schema(files: Sequence[Path], fmt: Format, blocks: BlockSizes) -> pa.Schema:
    """The schema all files are read with: same columns everywhere, types unified."""
    schemas = [_file_schema(path, fmt, blocks) for path in files]
    first = schemas[0]
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        if set(schema.names) != set(first.names):
            missing = sorted(set(first.names) - set(schema.names))
            extra = sorted(set(schema.names) - set(first.names))
            raise InputError(
                f"{show(path)}: its columns differ from {show(files[0])}'s "
                f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'})"
            )
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise InputError(f"{where(files)}: the files' column types disagree: {exc}") from exc
    # Keep the first file's column order (unify_schemas already does), without file metadata.
    return pa.schema(list(unified))


def _file_schema(path: Path, fmt: Format, blocks: BlockSizes) -> pa.Schema:
    with reading(path, fmt):
        inferred = inferred_schema(path, fmt, blocks)
    names = list(inferred.names)
    if not names:
        raise InputError(f"{show(path)}: the file has no columns; is it empty?")
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise InputError(f"{show(path)}: duplicate column name(s): {', '.join(dupes)}")
    if fmt == "csv":
        # Every CSV column is text: ids like "007" keep their zeros, nothing is guessed.
        return pa.schema([(name, pa.string()) for name in names])
    if fmt == "jsonl":
        # pyarrow turns ISO-looking strings into timestamps (and drops a "Z"); keep the text.
        return pa.schema([f.with_type(_timestamps_as_strings(f.type)) for f in inferred])
    return pa.schema(list(inferred))


def _timestamps_as_strings(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_timestamps_as_strings(f.type)) for f in type_])
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(_timestamps_as_strings(type_.value_type)))
    return type_


@dataclass(frozen=True, slots=True)
class Roles:
    """Which column is the id, the inputs, the metadata and the expected answer."""

    id_column: str | None
    inputs: tuple[str, ...]
    metadata: tuple[str, ...]
    expected: str | None

    @classmethod
    def pick(cls, config: RunConfig, schema: pa.Schema, where: str) -> Roles:
        """The roles ``config`` asks for, checked against ``schema`` (``where`` names it)."""
        names = list(schema.names)
        _check_known(config, names, where)
        id_column = config.id_column or (_DEFAULT_ID if _DEFAULT_ID in names else None)
        inputs = config.input_columns or tuple(
            name
            for name in names
            if name not in (id_column, config.expected_column)
            and name not in config.metadata_columns
        )
        if not inputs:
            raise InputError(
                f"{where}: no input columns left (columns: {', '.join(names)}; id: {id_column}, "
                f"expected: {config.expected_column}, metadata: "
                f"{', '.join(config.metadata_columns) or 'none'}); pass --input-column"
            )
        roles = cls(id_column, tuple(inputs), config.metadata_columns, config.expected_column)
        roles.check_types(schema, where)
        return roles

    @property
    def used(self) -> list[str]:
        """The columns a run reads."""
        return used_columns(self.id_column, self.inputs, self.metadata, self.expected)

    def check_types(self, schema: pa.Schema, where: str) -> None:
        """Raise unless every column in a role has a type the API can take."""
        if self.id_column is not None:
            type_ = schema.field(self.id_column).type
            if not _is_id_type(type_):
                raise InputError(
                    f"{where}: id column {self.id_column!r} has type {type_}; "
                    "ids must be strings or numbers"
                )
        for name in self.metadata:
            type_ = schema.field(name).type
            if not _is_scalar(type_):
                raise InputError(
                    f"{where}: metadata column {name!r} has type {type_}; the API accepts only "
                    "flat scalar metadata (string, number, boolean or null)"
                )
        for name in {*self.inputs, *self.metadata, *([self.expected] if self.expected else [])}:
            problem = _unsupported(schema.field(name).type)
            if problem:
                raise InputError(f"{where}: column {name!r} {problem}")


def _check_known(config: RunConfig, names: list[str], where: str) -> None:
    """Raise a :class:`ConfigError` for an option naming a column the files do not have."""
    options: list[tuple[str, Iterable[str | None]]] = [
        ("--id-column", [config.id_column]),
        ("--input-column", config.input_columns),
        ("--metadata-column", config.metadata_columns),
        ("--expected-column", [config.expected_column]),
    ]
    for option, columns in options:
        unknown = [c for c in columns if c is not None and c not in names]
        if unknown:
            raise ConfigError(
                f"{where}: {option} names unknown column(s) {', '.join(map(repr, unknown))}; "
                f"available columns: {', '.join(names)}"
            )


def _is_id_type(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_id_type(type_.value_type)
    return bool(
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
    )


def _is_scalar(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_scalar(type_.value_type)
    return not pa.types.is_nested(type_)


def _unsupported(type_: pa.DataType) -> str | None:
    """Why values of ``type_`` cannot be sent as JSON, or ``None`` when they can."""
    if (
        pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
        or pa.types.is_fixed_size_binary(type_)
        or pa.types.is_binary_view(type_)
    ):
        return f"holds bytes ({type_}); decode it to text or leave the column out"
    if pa.types.is_interval(type_) or pa.types.is_union(type_):
        return f"has type {type_}, which has no JSON form"
    if pa.types.is_dictionary(type_):
        return _unsupported(type_.value_type)
    if pa.types.is_map(type_):
        return _unsupported(type_.key_type) or _unsupported(type_.item_type)
    for index in range(type_.num_fields if pa.types.is_nested(type_) else 0):
        problem = _unsupported(type_.field(index).type)
        if problem:
            return problem
    return None


def used_columns(
    id_column: str | None, inputs: Iterable[str], metadata: Iterable[str], expected: str | None
) -> list[str]:
    """The columns a run reads, each once, in a stable order."""
    columns = [id_column, *inputs, *metadata, expected]
    return list(dict.fromkeys(c for c in columns if c is not None))
