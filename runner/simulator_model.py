"""The simulator's pure core: its configuration, its "model", its fault plan and its bodies.

Nothing here does I/O. Every decision the simulator makes about a request (the answer, whether
it is wrong, its latency, which fault it gets) is a pure function of the config's ``seed`` and
of the request's *call key*, so tests can predict exactly what the server in
:mod:`runner.simulator` will do.

A call key is ``(deployment, variant, row, repeat)``: ``row`` is ``metadata.row_id`` when the
request carries one, else the canonical JSON of its inputs; ``repeat`` is ``metadata.repeat``
as text, or ``""``. The server counts attempts per call key (1, 2, …).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

from runner.errors import ConfigError

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

#: The ticket categories the simulated model answers, in keyword priority order.
LABELS: Final = ("billing", "account", "technical", "shipping", "other")

_KEYWORDS: Final = (
    ("billing", re.compile(r"\b(?:refund|invoice|charg|bill|payment|paid|price|subscription)")),
    ("account", re.compile(r"\b(?:password|login|log in|sign in|2fa|two.factor|account|locked)")),
    ("technical", re.compile(r"\b(?:crash|error|bug|broken|freez|exception|not working)")),
    ("shipping", re.compile(r"\b(?:ship|deliver|package|parcel|tracking|courier)")),
)

#: The thinking the simulated model streams before its answer.
REASONING_PIECES: Final = ("Reading", " the", " ticket", " and", " matching", " keywords", ".")

UsageShape = Literal["nested", "flat"]


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

    def __post_init__(self) -> None:
        if not 0.0 <= self.wrong_rate <= 1.0:
            raise SimulatorConfigError(f"wrong_rate must be in [0, 1], got {self.wrong_rate}")
        if self.latency_factor < 0:
            raise SimulatorConfigError(f"latency_factor must be >= 0, got {self.latency_factor}")
        if not self.model:
            raise SimulatorConfigError("model must not be empty")


DEFAULT_PROFILE: Final = VariantProfile()


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
        data = _known_keys(cls, values, "simulator configuration")
        if isinstance(data.get("deployments"), list | tuple):
            data["deployments"] = {name: () for name in data["deployments"]}
        if isinstance(data.get("retry_after"), int | float):
            data["retry_after"] = str(data["retry_after"])
        try:
            if "variants" in data:
                data["variants"] = {
                    name: profile
                    if isinstance(profile, VariantProfile)
                    else VariantProfile(**_known_keys(VariantProfile, profile, f"variant {name!r}"))
                    for name, profile in dict(data["variants"]).items()
                }
            return cls(**data)
        except TypeError as exc:
            raise SimulatorConfigError(f"invalid simulator configuration: {exc}") from exc

    def profile(self, variant: str | None) -> VariantProfile:
        """The profile a variant answers with."""
        return self.variants.get(variant or "", DEFAULT_PROFILE)


def _known_keys(cls: type, values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise SimulatorConfigError(f"{where} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SimulatorConfigError(f"unknown key(s) in {where}: {', '.join(map(str, unknown))}")
    return dict(values)


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


def _check_variants(variants: Mapping[str, Any]) -> dict[str, VariantProfile]:
    for name, profile in variants.items():
        if not isinstance(profile, VariantProfile):
            raise SimulatorConfigError(f"variant {name!r}: expected a VariantProfile")
    return dict(variants)


# --- the request --------------------------------------------------------------------------


class CallKey(NamedTuple):
    """What identifies one logical call across its retries."""

    deployment: str
    variant: str
    row: str
    """``metadata.row_id`` as text, else the canonical JSON of the inputs."""
    repeat: str
    """``metadata.repeat`` as text, ``""`` when absent."""


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form every hash of inputs is taken over."""
    return _CANONICAL.encode(value)


def call_key(
    deployment: str,
    variant: str | None,
    inputs: Mapping[str, Any] | str,
    metadata: Mapping[str, Any],
) -> CallKey:
    """The call key of a request (module docstring); ``inputs`` may be its canonical JSON."""
    row_id = metadata.get("row_id")
    if row_id is not None:
        row = str(row_id)
    else:
        row = inputs if isinstance(inputs, str) else canonical_json(inputs)
    repeat = metadata.get("repeat")
    return CallKey(deployment, variant or "", row, "" if repeat is None else str(repeat))


def validate_body(body: Mapping[str, Any]) -> str | None:
    """What is wrong with an invoke body per the protocol page, naming the field; None if valid."""
    deployment = body.get("deployment")
    if not isinstance(deployment, str) or not deployment:
        return "deployment: required, must be a non-empty string"
    for name, kind, label in (
        ("variant", str, "a string"),
        ("user", str, "a string"),
        ("inputs", dict, "an object"),
        ("metadata", dict, "an object"),
        ("streaming", bool, "a boolean"),
    ):
        if name in body and not isinstance(body[name], kind):
            return f"{name}: must be {label}, got {_json_type(body[name])}"
    for name in ("image_urls", "attachments"):
        if name in body:
            return f"{name}: not accepted by prompt invoke (use /v1/agent/invoke)"
    for key, value in body.get("metadata", {}).items():
        if not key:
            return "metadata: keys must be non-empty strings"
        if isinstance(value, dict | list):
            return (
                f"metadata.{key}: must be a string, number, boolean or null, "
                f"got {_json_type(value)}; metadata must be flat"
            )
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# --- the model ------------------------------------------------------------------------------


def reference_answer(inputs: Mapping[str, Any]) -> str:
    """The correct label of a support ticket: the first category whose keywords appear.

    Every string value of ``inputs`` (nested ones included) is searched, case-insensitively,
    for word-starts: billing (refund, invoice, charge …), then account (password, login, 2fa …),
    then technical (crash, error, bug …), then shipping (ship, delivery, package …); else
    ``other``.
    """
    text = " ".join(_strings(inputs)).lower()
    for label, pattern in _KEYWORDS:
        if pattern.search(text):
            return label
    return "other"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def unit_hash(*parts: object) -> float:
    """A seeded, stable, uniform-looking number in [0, 1) from the parts' text."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def is_wrong(seed: int, variant: str, inputs: Mapping[str, Any] | str, wrong_rate: float) -> bool:
    """Whether ``variant`` answers a wrong label for these inputs (exactly, not on average).

    True on the rows whose seeded hash of (seed, variant, canonical inputs JSON) falls below
    ``wrong_rate``; ``inputs`` may be given as its canonical JSON already.
    """
    if wrong_rate <= 0:
        return False
    text = inputs if isinstance(inputs, str) else canonical_json(inputs)
    return unit_hash(seed, "wrong", variant, text) < wrong_rate


def model_response(
    config: SimulatorConfig,
    variant: str | None,
    inputs: Mapping[str, Any],
    inputs_json: str | None = None,
) -> str:
    """The full answer text the simulator gives this variant for these inputs.

    ``inputs_json``, the canonical JSON of ``inputs``, saves computing it again.
    """
    profile = config.profile(variant)
    label = reference_answer(inputs)
    if profile.wrong_rate > 0:
        text = canonical_json(inputs) if inputs_json is None else inputs_json
        if is_wrong(config.seed, variant or "", text, profile.wrong_rate):
            others = [other for other in LABELS if other != label]
            label = others[int(unit_hash(config.seed, "label", variant, text) * len(others))]
    if profile.verbose:
        return f"{label}. This ticket is about {label}, so I routed it to the {label} team."
    return label


def response_pieces(text: str, size: int = 4) -> list[str]:
    """The answer split into streamed pieces; they concatenate back to ``text``."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def usage(shape: UsageShape, inputs_json: str, response: str, duration: float) -> dict[str, Any]:
    """Token counts for an answer, in the nested (docs) or flat (SDK schema) shape."""
    prompt = 16 + len(inputs_json) // 4
    reasoning = 8 * len(REASONING_PIECES)
    completion = math.ceil(len(response) / 4) + reasoning
    if shape == "flat":
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return {
        "duration": round(duration, 3),
        "prompt_tokens": {"total_tokens": prompt, "cached_tokens": 0},
        "completion_tokens": {"total_tokens": completion, "reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def latency_for(config: SimulatorConfig, key: CallKey, attempt: int) -> float:
    """Seconds this attempt takes: (``latency_ms`` + seeded jitter) × the variant's factor."""
    millis = config.latency_ms
    if config.jitter_ms:
        millis += config.jitter_ms * unit_hash(config.seed, "jitter", *key, attempt)
    return millis * config.profile(key.variant).latency_factor / 1000.0


# --- the fault plan ------------------------------------------------------------------------


def fault_for(config: SimulatorConfig, key: CallKey, attempt: int) -> str | None:
    """The fault served to this attempt (1-based) of this call key, or None for a clean answer.

    A key drawn for a permanent fault gets it on every attempt. Otherwise each attempt draws a
    transient fault with the configured probabilities, until the key has had
    ``max_faults_per_key`` of them.
    """
    if config.permanent:
        kind = _pick(config.permanent, unit_hash(config.seed, "permanent", *key))
        if kind is not None:
            return kind
    if not config.faults:
        return None
    kind = _transient_draw(config, key, attempt)
    if kind is None or attempt <= config.max_faults_per_key:
        return kind  # fewer earlier attempts than the cap: the cap cannot have been reached
    earlier = sum(_transient_draw(config, key, n) is not None for n in range(1, attempt))
    return kind if earlier < config.max_faults_per_key else None


def _transient_draw(config: SimulatorConfig, key: CallKey, attempt: int) -> str | None:
    return _pick(config.faults, unit_hash(config.seed, "fault", *key, attempt))


def _pick(rates: Mapping[str, float], draw: float) -> str | None:
    total = 0.0
    for kind, rate in rates.items():
        total += rate
        if draw < total:
            return kind
    return None


# --- the wire bodies ------------------------------------------------------------------------

PROVIDER_ERROR: Final = "openai API error: provider rejected the request"
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))
_DONE: Final = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class PlannedAnswer:
    """One answer of the simulator, decided before a byte of it is sent."""

    key: CallKey
    request_id: str
    model: str
    text: str
    inputs_json: str
    """The canonical JSON of the inputs (prompt tokens are counted from it)."""
    delay: float
    """Seconds the answer takes (see :func:`latency_for`)."""
    streaming: bool


def plan_answer(
    config: SimulatorConfig,
    key: CallKey,
    attempt: int,
    inputs: Mapping[str, Any],
    inputs_json: str,
    *,
    streaming: bool,
    request_id: str,
) -> PlannedAnswer:
    """Everything the answer to this attempt will say, and how long it takes."""
    return PlannedAnswer(
        key=key,
        request_id=request_id,
        model=config.profile(key.variant).model,
        text=model_response(config, key.variant, inputs, inputs_json),
        inputs_json=inputs_json,
        delay=latency_for(config, key, attempt),
        streaming=streaming,
    )


def answer_payload(answer: PlannedAnswer, shape: UsageShape) -> dict[str, Any]:
    """The JSON body of a non-streaming success."""
    return {
        "request_id": answer.request_id,
        "model": answer.model,
        "response": answer.text,
        "usage": usage(shape, answer.inputs_json, answer.text, answer.delay),
    }


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event: ``data: <compact JSON>`` and a blank line."""
    return b"data: " + _COMPACT.encode(event).encode() + b"\n\n"


def stream_events(
    answer: PlannedAnswer, ttft_share: float, cut: str | None = None
) -> list[tuple[float, bytes]]:
    """The stream of an answer as (seconds after it starts, bytes to send).

    Reasoning pieces fill the first ``ttft_share`` of the delay, answer pieces the rest, then
    usage and ``[DONE]``. ``cut`` stops half-way through the answer: ``stream_error`` with an
    error event, ``truncate`` with nothing more.
    """
    rid, model, delay = answer.request_id, answer.model, answer.delay
    first = delay * ttft_share
    events = [
        (first * i / len(REASONING_PIECES), _piece(rid, model, "reasoning", piece))
        for i, piece in enumerate(REASONING_PIECES)
    ]
    pieces = response_pieces(answer.text)
    sent = pieces if cut is None else pieces[: max(1, len(pieces) // 2)]
    step = (delay - first) / len(pieces)
    events += [
        (first + step * j, _piece(rid, model, "response", piece)) for j, piece in enumerate(sent)
    ]
    if cut == "stream_error":
        error = {
            "type": "error",
            "error": PROVIDER_ERROR,
            "error_code": "provider_error",
            "request_id": rid,
        }
        events.append((first + step * len(sent), sse(error)))
    elif cut is None:
        final = {
            "request_id": rid,
            "type": "usage",
            "usage": usage("nested", answer.inputs_json, answer.text, delay),  # the docs' shape
            "stop_reason": "completed",
        }
        events.append((delay, sse(final) + _DONE))
    return events


def _piece(request_id: str, model: str, kind: str, text: str) -> bytes:
    return sse({"request_id": request_id, "type": kind, "model": model, "response": text})


def error_body(message: str, code: str) -> dict[str, Any]:
    """An API error body: ``error`` and ``message`` carry the text, ``code`` the machine code."""
    return {"error": message, "code": code, "message": message}


def daily_cap_body(limit: int, current: int) -> dict[str, Any]:
    """The daily plan cap's 429 body, word for word as on the protocol page."""
    return {
        "error": "Daily API rate limit reached",
        "code": "api_rate_limit_exceeded",
        "message": f"You have reached your daily limit of {limit} API calls. "
        "Resets at midnight UTC.",
        "limit": limit,
        "current": current,
    }


#: Status and JSON body of the faults that are a plain JSON error.
FAULT_REPLIES: Final[Mapping[str, tuple[int, dict[str, Any]]]] = {
    "http_502": (502, {"error": PROVIDER_ERROR}),
    "stream_error": (502, {"error": PROVIDER_ERROR}),  # without streaming
    "http_429": (429, error_body("Too many requests, slow down", "too_many_requests")),
    "http_500": (500, error_body("Internal server error", "internal_server_error")),
    "http_400": (400, error_body("Invalid parameters for this deployment", "bad_request")),
    "http_422": (
        422,
        error_body("inputs: the prompt cannot be rendered with these inputs", "validation_error"),
    ),
}

#: The 429 of ``max_in_flight``: a concurrency cap, transient, unlike the daily cap.
CONCURRENCY_CAP_BODY: Final = {
    "error": "You've reached your concurrency limit",
    "code": "too_many_requests",
}

HTML_503: Final = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)
