"""One option of an experiment, as the option table (:mod:`runner.experiment._fields`)
declares it: its parameter name, command-line flags, kind, key in the experiment file, default
and help."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from runner.config import RunConfig

#: A default that is :class:`RunConfig`'s own (the one place defaults of what is sent live).
CONFIG: Final = object()
#: From this many calls on, the end of a run happens in a fresh process (BENCHMARKS.md).
FRESH_PROCESS_FROM: Final = 200_000

_CONFIG_DEFAULTS: Final = {f.name: f.default for f in dataclasses.fields(RunConfig)}


@dataclass(frozen=True)
class Field:
    """One option of an experiment."""

    param: str
    """The ``run`` parameter (click's name for it)."""
    flags: tuple[str, ...]
    """The command-line flags; empty: the positional argument (DATASET)."""
    kind: str
    """``str``, ``int``, ``float``, ``bool``, ``path``, ``strs`` (repeatable, or a TOML list)
    or ``table`` (repeatable ``KEY=VALUE``, or a TOML table)."""
    key: str | None = ""
    """Its key in an experiment file: "" for the parameter's own name, None for none."""
    choices: tuple[str, ...] = ()
    negative: str | None = None
    """The flag that turns a ``bool`` off (``--no-stream``); without it the flag only turns on."""
    default: Any = None
    metavar: str | None = None
    envvar: str | None = None
    help: str | None = None

    @property
    def file_key(self) -> str | None:
        return self.param if self.key == "" else self.key

    @property
    def default_value(self) -> Any:
        return _CONFIG_DEFAULTS[self.param] if self.default is CONFIG else self.default
