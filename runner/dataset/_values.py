"""Arrow values made JSON-safe, once, at the input boundary.

Dates, datetimes and times become ISO-8601 strings, durations seconds, decimals floats, NaN and
infinities ``None``; lists, structs and maps stay lists and dicts. Bytes have no JSON form and
are refused (base64 would silently send gibberish into a prompt).
"""

from __future__ import annotations

import math
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa


class NotJsonSafe(Exception):
    """A value with no JSON form, at ``index`` of its array; the caller names file and column."""

    def __init__(self, kind: str, index: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.index = index


def json_values(array: pa.Array) -> list[Any]:
    """The array's values as JSON-safe Python values."""
    type_ = array.type
    if is_text(type_) or pa.types.is_integer(type_) or pa.types.is_boolean(type_):
        return list(array.to_pylist())  # already JSON-safe: skip the per-value walk
    if pa.types.is_floating(type_):
        return [finite(v) for v in array.to_pylist()]
    values = array.cast(python_type(type_), safe=False).to_pylist(maps_as_pydicts="strict")
    out = []
    for i, value in enumerate(values):
        try:
            out.append(json_safe(value))
        except NotJsonSafe as exc:
            raise NotJsonSafe(exc.kind, i) from None
    return out


def json_safe(value: Any) -> Any:
    """One Python value made JSON-safe, recursively; ``NotJsonSafe`` for bytes and the like."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return finite(float(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    raise NotJsonSafe(type(value).__name__)


def finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def python_type(type_: pa.DataType) -> pa.DataType:
    """``type_`` with nanosecond units made microseconds and dictionaries decoded.

    Without pandas, pyarrow cannot turn nanoseconds into Python objects (and with it, it
    returns pandas types); microseconds give the same output everywhere.
    """
    if pa.types.is_dictionary(type_):
        return python_type(type_.value_type)
    if pa.types.is_timestamp(type_) and type_.unit == "ns":
        return pa.timestamp("us", type_.tz)
    if pa.types.is_time64(type_) and type_.unit == "ns":
        return pa.time64("us")
    if pa.types.is_duration(type_) and type_.unit == "ns":
        return pa.duration("us")
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(python_type(type_.value_type)))
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(python_type(type_.value_type)))
    if pa.types.is_fixed_size_list(type_):
        field_ = type_.value_field.with_type(python_type(type_.value_type))
        return pa.list_(field_, type_.list_size)
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(python_type(f.type)) for f in type_])
    if pa.types.is_map(type_):
        return pa.map_(
            python_type(type_.key_type), type_.item_field.with_type(python_type(type_.item_type))
        )
    return type_


def is_text(type_: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    )
