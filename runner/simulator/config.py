"""The simulator's configuration: what it serves, how fast, with which faults and limits.

Checked when built, like :class:`runner.config.RunConfig`; the same ``seed`` replays the same
run (see :mod:`runner.simulator.model` and :mod:`runner.simulator.faults`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from runner.config_checks import known_keys
from runner.errors import ConfigError
from runner.simulator.judges import JUDGE_FORMATS, JudgeFormat

#: Transient faults, in the order their probabilities are stacked on one uniform draw.
FAULT_KINDS: Final = (
    "http_502",
    "http_429",
    "http_500",
    "http_503_html",
    "reset",
    "stream_error",
    "truncate",
    "stall",
)
#: Permanent faults: a key drawn for one of these gets it on every attempt.
PERMANENT_KINDS: Final = ("http_400", "http_422")


UsageShape = Literal["nested", "flat"]

#: What a judge variant answers (see :func:`runner.simulator.model.judge_response`).
JudgeKind = Literal[
    "pointwise", "pointwise_text", "pairwise", "pairwise_biased", "garbage", "grader"
]
JUDGE_KINDS: Final = (
    "pointwise",
    "pointwise_text",
    "pairwise",
    "pairwise_biased",
    "garbage",
    "grader",
)
#: Short names of judge kinds in a judge style (:func:`judge_profile`).
_KIND_ALIASES: Final = {"biased": "pairwise_biased"}


class SimulatorConfigError(ConfigError, ValueError):
    """An invalid simulator setting: a ``ConfigError`` for the CLI, a ``ValueError`` for callers."""


@dataclass(frozen=True, slots=True)
class VariantProfile:
    """How one variant of the simulated deployment behaves."""

    latency_factor: float = 1.0
    """Multiplies the request's latency (``latency_ms`` plus jitter)."""
    wrong_rate: float = 0.0
    """Share of rows (chosen by :func:`is_wrong`) answered with a wrong label."""
    verbose: bool = False
    """Append an explanatory sentence after the label, so outputs are longer."""
    model: str = "gpt-5-nano"
    """The ``model`` field of every answer."""
    judge: JudgeKind | None = None
    """Answer as a judge deployment instead of as the ticket classifier: ``pointwise``
    (``{"score": 0|1, "reason": …}``), ``pointwise_text`` (a last line ``SCORE: N``),
    ``pairwise`` (``{"winner": "A"|"B"|"tie", …}``, the side whose label is right),
    ``pairwise_biased`` (always ``A``: a position-biased judge), ``garbage`` (no verdict), or
    ``grader`` (a pair when the inputs hold ``output_a``, else one answer)."""
    judge_format: JudgeFormat | None = None
    """The published format a judge writes its verdict in (see
    :mod:`runner.simulator.judges`): ``json``, ``mtbench``, ``prometheus``, ``score_line``,
    ``arena_hard`` or ``winner_line``, with realistic reasoning around it. None: the runner's
    own terse answers described under :attr:`judge`."""

    def __post_init__(self) -> None:
        if self.judge is not None and self.judge not in JUDGE_KINDS:
            raise SimulatorConfigError(f"judge must be one of {JUDGE_KINDS}, got {self.judge!r}")
        if self.judge_format is not None and self.judge_format not in JUDGE_FORMATS:
            raise SimulatorConfigError(
                f"judge_format must be one of {JUDGE_FORMATS}, got {self.judge_format!r}"
            )
        if not 0.0 <= self.wrong_rate <= 1.0:
            raise SimulatorConfigError(f"wrong_rate must be in [0, 1], got {self.wrong_rate}")
        if self.latency_factor < 0:
            raise SimulatorConfigError(f"latency_factor must be >= 0, got {self.latency_factor}")
        if not self.model:
            raise SimulatorConfigError("model must not be empty")


DEFAULT_PROFILE: Final = VariantProfile()


def judge_profile(style: str | VariantProfile) -> VariantProfile:
    """The profile of a judge deployment from its style: ``FORMAT`` (a grader writing that
    format, e.g. ``mtbench``), ``KIND`` (e.g. ``garbage``, ``biased``), or ``KIND:FORMAT``
    (e.g. ``biased:arena_hard``); a :class:`VariantProfile` is taken as it is."""
    if isinstance(style, VariantProfile):
        profile = style
    elif not isinstance(style, str):
        raise SimulatorConfigError(f"a judge style is a string such as 'mtbench', not {style!r}")
    else:
        kind, _, fmt = style.strip().partition(":")
        if not fmt and kind in JUDGE_FORMATS:
            kind, fmt = "grader", kind
        kind = _KIND_ALIASES.get(kind, kind)
        if kind not in JUDGE_KINDS or (fmt and fmt not in JUDGE_FORMATS):
            raise SimulatorConfigError(
                f"judge style {style!r} is not FORMAT, KIND or KIND:FORMAT; formats: "
                f"{', '.join(JUDGE_FORMATS)}; kinds: {', '.join(JUDGE_KINDS)}, biased"
            )
        profile = VariantProfile(judge=kind, judge_format=fmt or None)  # type: ignore[arg-type]
    if profile.judge is None:
        raise SimulatorConfigError("a judge deployment's profile must set judge")
    return profile


def _default_variants() -> dict[str, VariantProfile]:
    return {
        "baseline": VariantProfile(),
        "candidate": VariantProfile(latency_factor=1.2, wrong_rate=0.08, verbose=True),
    }


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator does, checked when built; the same seed replays the same run."""

    seed: int = 0
    """Seeds every decision: wrong answers, jitter, faults."""
    api_key: str | None = None
    """The only accepted key; ``None`` accepts any key starting with ``fhk_``."""
    deployments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Known deployments and their variants (empty tuple: any variant of it).

    Empty (the default) accepts every deployment and variant. Once set, any other deployment,
    or a variant a deployment does not list, is answered 404 with a JSON body whose message
    says which was not found (``{"error": "deployment 'x' not found", "code": "not_found"}``).
    """
    variants: Mapping[str, VariantProfile] = field(default_factory=_default_variants)
    """Behaviour per variant name; a variant not listed behaves like ``VariantProfile()``."""
    judges: Mapping[str, VariantProfile | str] = field(default_factory=dict)
    """Judge deployments: deployment name → the judge every variant of it answers as, given
    as a profile or a style string (:func:`judge_profile`: ``mtbench``, ``biased:arena_hard``,
    ``garbage`` …). So ``--judge grader:v1`` is graded in MT-Bench's format by
    ``judges={"grader": "mtbench"}``. A judge deployment is always known (never 404)."""
    latency_ms: float = 0.0
    """Base latency of every answer, before the variant's ``latency_factor``."""
    jitter_ms: float = 0.0
    """Up to this much extra latency, drawn per (call key, attempt) from the seed."""
    ttft_share: float = 0.4
    """Streaming: share of the latency before the first answer piece."""
    usage_shape: UsageShape = "nested"
    """Non-streaming ``usage``: the docs' nested token counts, or the SDK schema's flat ones."""
    faults: Mapping[str, float] = field(default_factory=dict)
    """Transient fault kind (see :data:`FAULT_KINDS`) → probability per attempt."""
    max_faults_per_key: int = 1
    """At most this many transient faults per call key, so retries eventually succeed."""
    permanent: Mapping[str, float] = field(default_factory=dict)
    """``http_400`` / ``http_422`` → share of call keys that get it on every attempt."""
    retry_after: str = "0"
    """The ``Retry-After`` header of an ``http_429`` fault (seconds or an HTTP date)."""
    stall_seconds: float = 30.0
    """How long a ``stall`` fault waits before answering."""
    daily_limit: int | None = None
    """After this many served invoke requests, answer the daily-cap 429."""
    credit_limit: int | None = None
    """After this many served invoke requests, answer 402 (out of credits)."""
    record_limit: int = 10_000
    """How many received requests the stats keep (the oldest are dropped)."""
    max_in_flight: int | None = None
    """A concurrency cap: a request that arrives while this many are being answered gets 429
    ``too_many_requests`` with ``Retry-After: 0`` (counted in ``SimulatorStats.throttled``)."""
    hang: bool = False
    """Accept every request and never answer it, until ``SimulatorServer.hang(False)`` (or the
    client gives up). A held request counts against ``max_in_flight``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "deployments", _check_deployments(self.deployments))
        object.__setattr__(self, "variants", _check_variants(self.variants))
        object.__setattr__(self, "judges", _check_judges(self.judges))
        object.__setattr__(self, "faults", _check_rates("faults", self.faults, FAULT_KINDS))
        object.__setattr__(
            self, "permanent", _check_rates("permanent", self.permanent, PERMANENT_KINDS)
        )
        if self.api_key is not None and not self.api_key:
            raise SimulatorConfigError(
                "api_key must not be empty (use None to accept any fhk_ key)"
            )
        for name in ("latency_ms", "jitter_ms", "stall_seconds"):
            if getattr(self, name) < 0:
                raise SimulatorConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ttft_share <= 1.0:
            raise SimulatorConfigError(f"ttft_share must be in [0, 1], got {self.ttft_share}")
        if self.usage_shape not in ("nested", "flat"):
            raise SimulatorConfigError(
                f"usage_shape must be nested or flat, not {self.usage_shape!r}"
            )
        if not isinstance(self.retry_after, str) or not self.retry_after.strip():
            raise SimulatorConfigError("retry_after must be a non-empty string")
        for name in ("daily_limit", "credit_limit"):
            limit = getattr(self, name)
            if limit is not None and limit < 0:
                raise SimulatorConfigError(f"{name} must be >= 0, got {limit}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise SimulatorConfigError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.max_faults_per_key < 0 or self.record_limit < 0:
            raise SimulatorConfigError("max_faults_per_key and record_limit must be >= 0")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulatorConfig:
        """Build a config from plain values (a parsed JSON file, say); unknown keys are rejected.

        ``variants`` maps names to profile mappings; ``deployments`` maps names to lists of
        variants, or is a plain list of deployment names.
        """
        data = known_keys(cls, values, "simulator configuration", SimulatorConfigError)
        if isinstance(data.get("deployments"), list | tuple):
            data["deployments"] = {name: () for name in data["deployments"]}
        if isinstance(data.get("retry_after"), int | float):
            data["retry_after"] = str(data["retry_after"])
        try:
            if "variants" in data:
                data["variants"] = {
                    name: profile
                    if isinstance(profile, VariantProfile)
                    else VariantProfile(**_profile_keys(name, profile))
                    for name, profile in dict(data["variants"]).items()
                }
            return cls(**data)
        except TypeError as exc:
            raise SimulatorConfigError(f"invalid simulator configuration: {exc}") from exc

    def profile(self, variant: str | None, deployment: str | None = None) -> VariantProfile:
        """The profile a variant answers with: its judge deployment's, when ``deployment`` is
        one of :attr:`judges`, else its own."""
        if deployment is not None and deployment in self.judges:
            judge = self.judges[deployment]
            assert isinstance(judge, VariantProfile)  # __post_init__ made every style a profile
            return judge
        return self.variants.get(variant or "", DEFAULT_PROFILE)


def _profile_keys(name: str, profile: Any) -> dict[str, Any]:
    return known_keys(VariantProfile, profile, f"variant {name!r}", SimulatorConfigError)


def _check_rates(name: str, rates: Mapping[str, float], kinds: tuple[str, ...]) -> dict[str, float]:
    unknown = sorted(set(rates) - set(kinds))
    if unknown:
        raise SimulatorConfigError(
            f"unknown {name} kind(s): {', '.join(unknown)}; known: {', '.join(kinds)}"
        )
    for kind, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise SimulatorConfigError(f"{name}[{kind!r}] must be in [0, 1], got {rate}")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise SimulatorConfigError(f"{name} probabilities add up to more than 1")
    return {kind: float(rates[kind]) for kind in kinds if rates.get(kind)}


def _check_deployments(deployments: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, variants in deployments.items():
        if not isinstance(name, str) or not name:
            raise SimulatorConfigError(f"deployment names must be non-empty strings: {name!r}")
        if isinstance(variants, str) or not all(isinstance(v, str) for v in variants):
            raise SimulatorConfigError(f"deployment {name!r}: variants must be a list of names")
        out[name] = tuple(variants)
    return out


def _check_judges(judges: Mapping[str, Any]) -> dict[str, VariantProfile]:
    out: dict[str, VariantProfile] = {}
    for name, style in dict(judges).items():
        if not isinstance(name, str) or not name:
            raise SimulatorConfigError(
                f"judge deployment names must be non-empty strings: {name!r}"
            )
        if isinstance(style, Mapping):
            style = VariantProfile(**_profile_keys(name, style))
        out[name] = judge_profile(style)
    return out


def _check_variants(variants: Mapping[str, Any]) -> dict[str, VariantProfile]:
    for name, profile in variants.items():
        if not isinstance(profile, VariantProfile):
            raise SimulatorConfigError(f"variant {name!r}: expected a VariantProfile")
    return dict(variants)
