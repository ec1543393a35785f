"""Click options built from the experiment's one table of options
(:data:`runner.experiment.FIELDS`): ``runner run`` takes them all, and the commands that share
some (``judge``, ``report``, ``compare``, ``gate``) take those by name, so an option is declared
once, for the command line and the experiment file alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.experiment import BY_PARAM, FIELDS, Field

F = TypeVar("F", bound=Callable[..., Any])

#: Every parameter of ``runner run``, in the order ``--help`` lists them.
RUN_PARAMS = tuple(field.param for field in FIELDS)


def options_of(*params: str) -> Callable[[F], F]:
    """A decorator that adds the click options (or argument) of ``params``, in that order."""

    def decorate(func: F) -> F:
        for name in reversed(params):
            func = _click(BY_PARAM[name])(func)
        return func

    return decorate


def _click(field: Field) -> Callable[[F], F]:
    if not field.flags:  # DATASET: the positional argument, any number of files
        return click.argument(field.param, nargs=-1)
    decls: tuple[str, ...] = field.flags
    extra: dict[str, Any] = {}
    default = field.default_value
    if field.kind == "bool" and field.negative is not None:
        decls = (f"{field.flags[0]}/{field.negative}",)
        extra.update(default=default, show_default=True)
    elif field.kind == "bool":
        extra["is_flag"] = True
    elif field.kind in ("strs", "table"):
        extra["multiple"] = True
    else:
        extra["type"] = _TYPES[field.kind] if not field.choices else click.Choice(field.choices)
        if default is not None:
            extra.update(default=default, show_default=True)
    if field.metavar is not None:
        extra["metavar"] = field.metavar
    if field.envvar is not None:
        extra["envvar"] = field.envvar
    option = click.option(*decls, field.param, help=field.help, **extra)
    return option


_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "path": click.Path(path_type=Path),
}
