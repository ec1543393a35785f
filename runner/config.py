"""Typed run configuration, validated when built.

Every path, limit and switch of a run lives in :class:`RunConfig`. It holds no secret: the API
key is read from ``FETCH_HIVE_API_KEY`` by the caller and handed to the client alone, so a
config can be written to the manifest as it is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from runner.config_checks import is_loopback_host, known_keys
from runner.errors import ConfigError
from runner.records import JsonScalar

DEFAULT_BASE_URL: Final = "https://api.fetchhive.com/v1"
API_KEY_ENV: Final = "FETCH_HIVE_API_KEY"
BASE_URL_ENV: Final = "FETCH_HIVE_BASE_URL"

#: Metadata keys the runner sets on every call; tags and metadata columns may not reuse them.
RESERVED_METADATA: Final = frozenset({"run_id", "row_id", "variant", "repeat", "experiment"})

InputFormat = Literal["auto", "csv", "parquet", "jsonl"]

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "RunConfig",
    "api_key_from_env",
    "check_base_url",
    "check_metadata",
    "is_loopback_url",
    "parse_tag",
]

#: Field metadata marking what a run computes: these fields make up its config fingerprint,
#: so a resume must match them; the others (limits, timeouts) may change between sessions.
WORK: Final = {"work": True}


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


def api_key_from_env() -> str | None:
    """The API key: ``$FETCH_HIVE_API_KEY`` only, or None when it is unset or empty (the one
    place the runner reads it; a library caller passes ``api_key=`` instead)."""
    return os.environ.get(API_KEY_ENV) or None


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is a loopback address or ``localhost``."""
    return is_loopback_host(urlsplit(url).hostname or "")


def check_base_url(url: str) -> str:
    """Return the base URL without a trailing slash, or raise if it is unsafe or malformed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL with a host")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ConfigError(
            f"--base-url {url!r} uses plain http to a non-loopback host; the API key would "
            "travel unencrypted. Use https, or http only to 127.0.0.1 / localhost."
        )
    return url.rstrip("/")


def check_metadata(metadata: Mapping[str, Any], where: str) -> dict[str, JsonScalar]:
    """Return ``metadata`` if it is flat (non-empty string keys, scalar values), else raise."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: metadata keys must be non-empty strings, got {key!r}")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ConfigError(
                f"{where}: metadata key {key!r} has a {type(value).__name__} value; the API "
                "accepts only flat scalars (string, number, boolean or null)"
            )
    return dict(metadata)


def parse_tag(text: str, option: str = "--tag") -> tuple[str, str]:
    """Parse one ``KEY=VALUE`` of ``option`` (``--tag``, ``--judge-var``, …)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{option} {text!r} is not KEY=VALUE")
    return key.strip(), value


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs to know, checked on construction.

    Fields that define *what* is computed (dataset, deployment, variants, columns, repeats,
    metadata, streaming, limit, shard) make up the run's fingerprint; the others (concurrency,
    timeouts, retries, rate limits) may change between a run and its resume.
    """

    dataset: tuple[str, ...]
    """Input files, directories or globs; all of one format."""
    out_dir: Path
    """Where results, journal and manifest go."""
    deployment: str = field(metadata=WORK)
    """The Fetch Hive prompt deployment name."""
    variants: tuple[str, ...] = field(metadata=WORK)
    """Variants to invoke for every row; the first is the default baseline."""
    input_format: InputFormat = field(default="auto", metadata=WORK)
    """csv, parquet or jsonl; ``auto`` picks by file extension."""
    id_column: str | None = field(default=None, metadata=WORK)
    """Column holding a stable row id; default ``id`` if present, else the row position."""
    input_columns: tuple[str, ...] = field(default=(), metadata=WORK)
    """Columns sent as prompt inputs; empty means every column not used otherwise."""
    metadata_columns: tuple[str, ...] = field(default=(), metadata=WORK)
    """Columns whose values go into each call's metadata."""
    metadata_from: Mapping[str, str] = field(default_factory=dict, metadata=WORK)
    """Runner metadata keys (``row_id``, ``repeat``) sent from a metadata column instead of
    the row's own: a judge pass sends the id and repeat of the outcome it judges."""
    segment_columns: tuple[str, ...] = ()
    """Input or metadata columns the reports break the summary and comparison down by."""
    expected_column: str | None = field(default=None, metadata=WORK)
    """Column carried into the results as ``expected`` for scoring."""
    limit: int | None = field(default=None, metadata=WORK)
    """Take only the first N rows."""
    sample: int | None = field(default=None, metadata=WORK)
    """Send only a random sample of N rows, chosen by a hash of the row id and ``seed``: the
    same rows on every machine, every shard and every resume."""
    seed: int = field(default=0, metadata=WORK)
    """The seed of ``sample``."""
    repeat: int = field(default=1, metadata=WORK)
    """Calls per (row, variant)."""
    experiment: str | None = field(default=None, metadata=WORK)
    """Experiment name, sent as metadata ``experiment``."""
    tags: Mapping[str, str] = field(default_factory=dict, metadata=WORK)
    """Flat ``KEY=VALUE`` pairs sent as metadata on every call."""
    user: str | None = field(default=None, metadata=WORK)
    """Optional ``user`` field of every request."""
    base_url: str = DEFAULT_BASE_URL
    """API base URL, up to and including ``/v1``."""
    stream: bool = field(default=False, metadata=WORK)
    """Use server-sent events; records time to first token."""
    concurrency: int = 16
    """Requests in flight at most, retries included."""
    max_attempts: int = 4
    """Attempts per call, first one included."""
    timeout: float = 120.0
    """Seconds per attempt (connect, write and each read)."""
    backoff_initial: float = 0.5
    """First backoff ceiling in seconds; doubles per attempt, full jitter."""
    backoff_max: float = 30.0
    """Largest single backoff in seconds, ``Retry-After`` included."""
    max_elapsed: float = 600.0
    """Seconds one call may spend across all its attempts and backoffs."""
    rps: float | None = None
    """Global ceiling on requests started per second."""
    adaptive: bool = True
    """Halve concurrency on transient 429s, grow it back by one per success window."""
    max_outage: float = 60.0
    """Seconds the API may stay unreachable (refused, DNS, TLS, every attempt timing out)
    while the run pauses and probes, before it is aborted (exit 3)."""
    max_error_rate: float = 0.05
    """Largest share of error rows per variant for a run to succeed; above it, exit 4."""
    max_response_bytes: int = 10 * 1024 * 1024
    """Largest answer accepted; a bigger one becomes an error row (``response_too_large``)."""
    grace_period: float = 10.0
    """Seconds in-flight requests may finish after Ctrl-C or SIGTERM."""
    resume: bool = False
    """Continue the run in ``out_dir``; finished calls are not sent again."""
    retry_errors: bool = False
    """With resume: send again the calls whose outcome was an error."""
    shard: tuple[int, int] | None = field(default=None, metadata=WORK)
    """``(index, count)``: process only the rows whose key hashes to this shard."""
    run_id: str | None = None
    """Run id of a new run; default random, or for a shard derived from dataset and config."""

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("no dataset given")
        if not self.deployment or not self.deployment.strip():
            raise ConfigError("--deployment is required")
        if not self.variants:
            raise ConfigError("at least one --variant is required")
        for variant in self.variants:
            if not variant or not variant.strip():
                raise ConfigError("--variant must not be empty")
        dupes = sorted({v for v in self.variants if self.variants.count(v) > 1})
        if dupes:
            raise ConfigError(f"--variant given more than once: {', '.join(dupes)}")
        if self.input_format not in ("auto", "csv", "parquet", "jsonl"):
            raise ConfigError(f"unknown input format {self.input_format!r}")
        for name, value, low in (
            ("--repeat", self.repeat, 1),
            ("--concurrency", self.concurrency, 1),
            ("--max-attempts", self.max_attempts, 1),
        ):
            if value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")
        if self.sample is not None and self.sample < 1:
            raise ConfigError(f"--sample must be at least 1, got {self.sample}")
        for name, number in (
            ("--timeout", self.timeout),
            ("--rps", self.rps),
            ("--max-outage", self.max_outage),
            ("--grace-period", self.grace_period),
            ("--max-error-rate", self.max_error_rate),
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
            ("max_elapsed", self.max_elapsed),
        ):
            if number is not None and not math.isfinite(number):
                raise ConfigError(f"{name} must be a finite number, got {number}")
        for name, seconds in (
            ("--timeout", self.timeout),
            ("backoff_max", self.backoff_max),
            ("max_elapsed", self.max_elapsed),
        ):
            if seconds <= 0:
                raise ConfigError(f"{name} must be positive, got {seconds}")
        if self.backoff_initial < 0 or self.grace_period < 0:
            raise ConfigError("backoff_initial and grace_period must not be negative")
        if self.max_outage <= 0:
            raise ConfigError(f"--max-outage must be positive, got {self.max_outage}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ConfigError(f"--max-error-rate must be in [0, 1], got {self.max_error_rate}")
        if self.max_response_bytes < 1:
            raise ConfigError(
                f"--max-response-bytes must be at least 1, got {self.max_response_bytes}"
            )
        if self.rps is not None and self.rps <= 0:
            raise ConfigError(f"--rps must be positive, got {self.rps}")
        if self.retry_errors and not self.resume:
            raise ConfigError("--retry-errors only makes sense with --resume")
        if self.shard is not None:
            index, count = self.shard
            if count < 1 or not 0 <= index < count:
                raise ConfigError(f"--shard {index}/{count}: need 0 <= I < N")
        if self.run_id is not None and not _NAME.match(self.run_id):
            raise ConfigError(f"--run-id {self.run_id!r}: use letters, digits and . _ : / -")
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        tags = dict(self.tags)
        check_metadata(tags, "--tag")
        clash = sorted(RESERVED_METADATA & (tags.keys() | set(self.metadata_columns)))
        if clash:
            raise ConfigError(
                f"metadata key(s) {', '.join(clash)} are set by the runner itself; "
                "rename the tag or column"
            )
        object.__setattr__(self, "tags", tags)
        overrides = dict(self.metadata_from)
        wrong = sorted(
            f"{k}={v}" for k, v in overrides.items()
            if k not in ("row_id", "repeat") or v not in self.metadata_columns
        )  # fmt: skip
        if wrong:
            raise ConfigError(
                f"metadata_from {', '.join(wrong)}: only row_id and repeat, each from a "
                "metadata column"
            )
        object.__setattr__(self, "metadata_from", overrides)
        used = [c for c in (self.id_column, self.expected_column) if c]
        overlap = sorted(set(used) & set(self.input_columns))
        if overlap:
            raise ConfigError(
                f"column(s) {', '.join(overlap)} cannot be both id/expected and input"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build a config from plain values (a parsed file, say); unknown keys are rejected."""
        data = known_keys(cls, values, "configuration")
        for name in ("dataset", "variants", "input_columns", "metadata_columns", "segment_columns"):
            if name in data and isinstance(data[name], str):
                data[name] = (data[name],)
            if name in data:
                data[name] = tuple(data[name])
        if "out_dir" in data:
            data["out_dir"] = Path(data["out_dir"])
        if data.get("shard") is not None:
            data["shard"] = tuple(data["shard"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the config (it holds no secret)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    def work_fields(self) -> dict[str, Any]:
        """The fields that define what the run computes; they form its config fingerprint."""
        full = self.to_dict()
        return {f.name: full[f.name] for f in dataclasses.fields(self) if f.metadata.get("work")}

    @property
    def baseline_variant(self) -> str:
        return self.variants[0]
