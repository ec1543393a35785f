"""The experiment file: an experiment's options as TOML, read with the standard library.

``runner run --config eval.toml`` reads every option of ``run`` from the file; an option given
on the command line replaces the file's value. The keys are the long options with underscores,
plural for the repeatable ones, at the top level; the ``KEY=VALUE`` options are tables::

    dataset = "data/tickets.csv"          # or a list of files, directories or globs
    deployment = "support-reply"
    variants = ["baseline", "candidate"]
    out = "reports/nightly/{date}-{time}"
    expected_column = "expected"
    score = "exact"
    max_score_drop = 2
    compare_with = "reports/nightly"      # past runs: the latest good one is the baseline

    [tags]
    team = "support"

An unknown key or a value of the wrong type is a :class:`~runner.errors.ConfigError` naming
the key, the file and the line. tomllib keeps no line numbers, so the line is found again in
the text (:func:`key_line`). :func:`experiment_toml` writes a resolved experiment back, so a
run keeps the file that reproduces it (``runner rerun``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from runner.errors import ConfigError
from runner.experiment._fields import FIELDS

# ------------------------------------------------------------------------------- the keys


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the file: the ``run`` parameter it sets and the TOML type it takes."""

    param: str
    kind: str
    """``str``, ``int``, ``float``, ``bool``, ``strs`` (a list of strings; ``dataset`` also
    takes one string) or ``table`` (strings by name, for the ``KEY=VALUE`` options)."""
    choices: tuple[str, ...] = ()


def _keys() -> dict[str, Key]:
    """The file's keys, derived from the one table of options (:data:`FIELDS`)."""
    return {
        field.file_key: Key(field.param, field.kind, field.choices)
        for field in FIELDS
        if field.file_key is not None
    }


#: Every key of an experiment file, by name.
KEYS: Final = _keys()
#: The file key of each ``run`` parameter.
KEY_OF_PARAM: Final = {key.param: name for name, key in KEYS.items()}

#: The ``run`` parameter of each long option (``--rps``: ``rps``).
_PARAM_OF_FLAG: Final = {
    flag: field.param for field in FIELDS for flag in field.flags if flag.startswith("--")
}

#: ``run`` parameters that belong to one invocation, never to the experiment: no file key.
CLI_ONLY: Final = frozenset(field.param for field in FIELDS if field.file_key is None)

#: The placeholders ``out`` may hold, filled in when the file is read.
PLACEHOLDERS: Final = ("date", "time")


@dataclass(frozen=True, slots=True)
class ExperimentFile:
    """An experiment file, checked: ``params`` are ``run`` parameters as click gives them."""

    path: Path
    params: Mapping[str, Any]
    text: str = ""
    """The file as read, for finding a key's line again."""

    def said_of_the_file(self, message: str, taken: Collection[str]) -> str:
        """``message`` refusing an option, said of this file's key when the value was
        ``taken`` from the file: ``--rps must be ...`` becomes ``e.toml, line 4: rps must be
        ...``. Any other message is returned as it is."""
        flag = re.match(r"--[a-z][a-z0-9-]*(?![a-z0-9-])", message)
        param = None if flag is None else _PARAM_OF_FLAG.get(flag.group(0))
        if flag is None or param is None or param not in taken:
            return message
        key = KEY_OF_PARAM[param]
        return f"{_where(self.path, self.text, (key,))}: {key}{message[flag.end() :]}"


def load_experiment(path: Path, *, now: datetime | None = None) -> ExperimentFile:
    """Read and check the experiment file ``path`` (:class:`ConfigError` naming key and line).

    ``out`` has its ``{date}`` (``2024-05-31``) and ``{time}`` (``0230``… as ``HHMMSS``)
    filled in from ``now`` (default: the local time now).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    return parse_experiment(text, path, now=now)


def parse_experiment(text: str, path: Path, *, now: datetime | None = None) -> ExperimentFile:
    """The checked parameters of an experiment file's ``text`` (``path`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    params: dict[str, Any] = {}
    for name, value in data.items():
        key = KEYS.get(name)
        if key is None:
            hint = difflib.get_close_matches(name, KEYS, n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{_where(path, text, (name,))}: unknown key {name!r}{also}")
        params[key.param] = _checked(name, key, value, path, text, now or datetime.now())
    return ExperimentFile(path=path, params=params, text=text)


def _where(path: Path, text: str, keys: tuple[str, ...]) -> str:
    line = key_line(text, keys)
    return f"{path}, line {line}" if line is not None else str(path)


def _checked(name: str, key: Key, value: Any, path: Path, text: str, now: datetime) -> Any:
    def wrong(expected: str, at: tuple[str, ...] = (name,), shown: Any = value) -> ConfigError:
        return ConfigError(
            f"{_where(path, text, at)}: {'.'.join(at)} must be {expected}, "
            f"got {_toml_type(shown)} {shown!r}"
        )

    checks: dict[str, Callable[[], Any]] = {
        "str": lambda: value if isinstance(value, str) else _raise(wrong("a string")),
        "path": lambda: value if isinstance(value, str) else _raise(wrong("a string (a path)")),
        "int": lambda: (
            value
            if isinstance(value, int) and not isinstance(value, bool)
            else _raise(wrong("an integer"))
        ),
        "float": lambda: (
            float(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else _raise(wrong("a number"))
        ),
        "bool": lambda: value if isinstance(value, bool) else _raise(wrong("true or false")),
    }
    if key.kind in checks:
        checked = checks[key.kind]()
        if key.choices and checked not in key.choices:
            raise wrong("one of " + ", ".join(key.choices))
        if key.kind == "path":
            filled = fill_placeholders(checked, now, f"{_where(path, text, (name,))}: {name}")
            return _beside(path, filled)
        return checked
    if key.kind == "strs":
        if name == "dataset" and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        if name == "dataset":
            return tuple(str(_beside(path, v)) for v in value)
        return tuple(value)
    # a table: KEY=VALUE pairs, as the repeatable option takes them
    if not isinstance(value, dict):
        raise wrong(f'a table ([{name}] with one KEY = "VALUE" a line)')
    pairs = []
    for sub, item in value.items():
        if not isinstance(item, str):
            raise wrong("a string", (name, sub), item)
        pairs.append(f"{sub}={item}")
    return tuple(pairs)


def _beside(file: Path, value: str) -> Path:
    """A path of the experiment file: relative ones are relative to the file's folder, so
    ``runner run --config ../job/nightly.toml`` works from any working directory."""
    given = Path(value).expanduser()
    return given if given.is_absolute() else file.parent / given


def _raise(error: ConfigError) -> Any:
    raise error


def _toml_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (list, "array"), (dict, "table")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__


def fill_placeholders(template: str, now: datetime, where: str) -> str:
    """``template`` with ``{date}`` as ``YYYY-MM-DD`` and ``{time}`` as ``HHMMSS`` of ``now``."""
    values = {"date": f"{now:%Y-%m-%d}", "time": f"{now:%H%M%S}"}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"{where}: unknown placeholder {{{name}}}; use {{date}} and {{time}}")
        return values[name]

    return re.sub(r"\{([^{}]*)\}", fill, template)


# ------------------------------------------------------------------------- finding a line

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")
_PART = re.compile(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


def key_line(text: str, keys: tuple[str, ...]) -> int | None:
    """The 1-based line where the key ``keys`` (``("tags", "team")`` for ``team`` under
    ``[tags]``) is set, else the header of its table; None when neither is found (tomllib
    keeps no line numbers, so the text is searched again)."""
    table: tuple[str, ...] = ()
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            if table == keys:
                return number
            if table == keys[: len(table)] and header_line is None:
                header_line = number
            continue
        assign = _ASSIGN.match(line)
        if assign is None:
            continue
        full = table + _parts(assign.group(1))
        if full[: len(keys)] == keys or keys[: len(full)] == full:
            return number
    return header_line


# ------------------------------------------------------------------------------- writing


def experiment_toml(params: Mapping[str, Any], *, header: str = "") -> str:
    """A resolved experiment as TOML (``run`` parameters in, file keys out; unset ones left
    out), so ``runner run --config`` on it runs the same job again."""
    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    tables: list[str] = []
    for name, key in KEYS.items():
        value = params.get(key.param)
        if value is None or value in ((), []) or (name == "no_report" and not value):
            continue
        if key.kind == "table":
            pairs = [str(p).partition("=") for p in value]
            tables += [
                "",
                f"[{name}]",
                *(f"{_toml_key(k)} = {_toml_value(v)}" for k, _, v in pairs),
            ]
            continue
        lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join([*lines, *tables]) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


#: What ``runner init`` writes: every common key, explained, the rare ones commented out.
STARTER: Final = """\
# An experiment: everything `runner run --config THIS_FILE` needs, in one file.
# Keys are run's long options with underscores (plural for repeatable ones); an option on
# the command line replaces the file's value. `runner run --help` explains each.

# What to run
dataset = "runner/data/tickets.csv"        # a file, directory or glob; or a list of them
deployment = "support-reply"
variants = ["baseline", "candidate"]       # the first is the baseline
expected_column = "expected"               # the reference answer, for scoring
# input_columns = ["subject", "body"]      # default: every other column
# metadata_columns = ["plan"]
# id_column = "id"
# limit = 100
# sample = 500
# seed = 0

# Where it goes: {date} is YYYY-MM-DD, {time} is HHMMSS, both local, when the run starts.
out = "reports/nightly/{date}-{time}"
experiment = "nightly"

# How answers are scored and judged
score = "exact"                            # exact, normalized, contains, regex:..., module:fn
# judge = "grader:v1"                      # a pointwise judge deployment
# pairwise_judge = "grader:pairwise"       # a pairwise judge: candidate against baseline
# segment_columns = ["plan"]

# Limits
concurrency = 16
max_attempts = 4
max_error_rate = 0.05                      # above it the run exits 4
# timeout = 120.0
# rps = 10.0
# base_url = "https://api.fetchhive.com/v1"   # also $FETCH_HIVE_BASE_URL; the key is never here

# Compare with the latest good run in this folder when the run ends, and gate on it: the most
# recent complete run of this deployment that finished before this one started and did not
# fail its own gates (`runner baseline show reports/nightly` says which, and why not the others).
compare_with = "reports/nightly"
# The first night has no baseline: without this key it exits 1 (the gates were not applied).
# Set it for that first night only (or pass --allow-no-baseline), then remove it, so a lost
# folder of runs (a CI cache miss) turns the job red instead of passing every night unchecked.
# allow_no_baseline = true
max_score_drop = 2.0                       # points (0-100)
max_error_rate_increase = 1.0              # percentage points
# max_p95_latency_increase = 20.0          # percent
# require_significance = 0.05
# min_win_rate = 0.45

[tags]
team = "support"
"""

#: The experiment file a run keeps in its OUT: its resolved options (see ``runner rerun``).
