"""The one table of an experiment's options: every ``runner run`` option and experiment-file key.

Each :class:`Field` is declared once: its parameter name, its command-line flags, its kind (which
is also how the experiment file checks its TOML value), its key in the file (None: an option of
one invocation, never of the experiment), its default and its help. ``runner run``'s options are
built from it (:mod:`runner.cli.run_options`), the file's keys are derived from it
(:data:`runner.experiment.KEYS`), and :func:`~runner.experiment.experiment_from_params` reads
what it names; a test holds the three to the table.
"""

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


FIELDS: Final[tuple[Field, ...]] = (
    Field("dataset", (), "strs"),
    Field(
        "config_file",
        ("--config",),
        "path",
        key=None,
        metavar="FILE",
        help="An experiment file (TOML; 'runner init' writes a starter): every option of run as a "
        "key. Options on the command line override it.",
    ),
    Field(
        "deployment",
        ("--deployment", "-d"),
        "str",
        help="Prompt deployment name.",
    ),
    Field(
        "variants",
        ("--variant", "-v"),
        "strs",
        help="Deployment variant to invoke for every row; repeat for an A/B comparison. The first "
        "is the baseline.",
    ),
    Field(
        "out",
        ("--out", "-o"),
        "path",
        help="Output directory (default reports/<deployment>-<time>). Must be empty unless "
        "--resume.",
    ),
    Field(
        "concurrency",
        ("--concurrency", "-c"),
        "int",
        default=CONFIG,
        help="Requests in flight at most, retries included.",
    ),
    Field(
        "repeat",
        ("--repeat",),
        "int",
        default=CONFIG,
        help="Calls per (row, variant), to measure consistency.",
    ),
    Field(
        "experiment",
        ("--experiment",),
        "str",
        help="Experiment name, sent as metadata 'experiment'.",
    ),
    Field(
        "tags",
        ("--tag",),
        "table",
        metavar="KEY=VALUE",
        help="Metadata tag on every call; repeatable.",
    ),
    Field(
        "id_column",
        ("--id-column",),
        "str",
        help="Column with a stable row id (default: 'id' if present, else the row position).",
    ),
    Field(
        "input_columns",
        ("--input-column",),
        "strs",
        help="Column sent as a prompt input; repeatable (default: all others).",
    ),
    Field(
        "metadata_columns",
        ("--metadata-column",),
        "strs",
        help="Column sent as per-row metadata; repeatable.",
    ),
    Field(
        "expected_column",
        ("--expected-column",),
        "str",
        help="Column with the expected answer, for scoring.",
    ),
    Field(
        "limit",
        ("--limit",),
        "int",
        help="Only the first N rows.",
    ),
    Field(
        "sample",
        ("--sample",),
        "int",
        metavar="N",
        help="Only a random sample of N rows, chosen by a hash of the row id and --seed: the same "
        "rows on every machine, shard and resume.",
    ),
    Field(
        "seed",
        ("--seed",),
        "int",
        default=CONFIG,
        help="The seed of --sample.",
    ),
    Field(
        "dry_run",
        ("--dry-run",),
        "bool",
        key=None,
        help="Make every check a run makes, then print the rows, variants and calls it would send "
        "(with --resume, the calls still to send). Sends nothing and writes nothing.",
    ),
    Field(
        "input_format",
        ("--format",),
        "str",
        key="format",
        choices=("auto", "csv", "parquet", "jsonl"),
        default=CONFIG,
        help="The dataset's format (auto: from the file names).",
    ),
    Field(
        "base_url",
        ("--base-url",),
        "str",
        default=CONFIG,
        envvar="FETCH_HIVE_BASE_URL",
        help="API base URL (also $FETCH_HIVE_BASE_URL).",
    ),
    Field(
        "stream",
        ("--stream",),
        "bool",
        negative="--no-stream",
        default=CONFIG,
        help="Stream answers (SSE); records time to first token.",
    ),
    Field(
        "max_attempts",
        ("--max-attempts",),
        "int",
        default=CONFIG,
        help="Attempts per call for transient failures (502, 5xx, timeouts, broken streams). A 429"
        " concurrency cap is retried within the call's time budget instead: it slows the run,"
        " it does not fail rows.",
    ),
    Field(
        "timeout",
        ("--timeout",),
        "float",
        default=CONFIG,
        help="Seconds per attempt, first byte to last.",
    ),
    Field(
        "rps",
        ("--rps",),
        "float",
        help="Ceiling on requests started per second.",
    ),
    Field(
        "adaptive",
        ("--adaptive",),
        "bool",
        negative="--no-adaptive",
        default=CONFIG,
        help="Halve concurrency on transient 429s and grow it back slowly.",
    ),
    Field(
        "max_outage",
        ("--max-outage",),
        "float",
        default=CONFIG,
        metavar="SECONDS",
        help="When the API cannot be reached (refused, DNS, TLS, every attempt timing out), pause "
        "and probe for up to this long before giving up (exit 3). A 404 for the deployment or"
        " variant stops the run at once.",
    ),
    Field(
        "max_error_rate",
        ("--max-error-rate",),
        "float",
        default=CONFIG,
        metavar="SHARE",
        help="Largest share (0-1) of error rows per variant. Above it the run still writes every "
        "report, then exits 4. 1 accepts any.",
    ),
    Field(
        "max_response_bytes",
        ("--max-response-bytes",),
        "int",
        default=CONFIG,
        metavar="BYTES",
        help="Largest answer kept; a bigger one becomes an error row (response_too_large), never "
        "buffered whole.",
    ),
    Field(
        "user",
        ("--user",),
        "str",
        help="Optional 'user' field of every request.",
    ),
    Field(
        "resume",
        ("--resume",),
        "bool",
        key=None,
        help="Continue the run in --out; finished calls are not sent again.",
    ),
    Field(
        "retry_errors",
        ("--retry-errors",),
        "bool",
        key=None,
        help="With --resume: send again the calls that ended in an error.",
    ),
    Field(
        "grace_period",
        ("--grace-period",),
        "float",
        default=CONFIG,
        help="Seconds requests in flight may finish after Ctrl-C, SIGTERM or SIGHUP.",
    ),
    Field(
        "shard",
        ("--shard",),
        "str",
        metavar="I/N",
        help="Process only shard I of N (0-based), into OUT/shards/shard-I-of-N; combine them with"
        " 'runner merge OUT'.",
    ),
    Field(
        "run_id",
        ("--run-id",),
        "str",
        key=None,
        help="Run id of a new run (default: random; for shards, derived from the dataset and "
        "config so every shard agrees).",
    ),
    Field(
        "score",
        ("--score",),
        "str",
        metavar="SCORER",
        help="How outputs are scored against --expected-column: exact, normalized, contains, "
        "regex:PATTERN, json, number, or module:function (default exact when there is an "
        "expected column).",
    ),
    Field(
        "baseline_variant",
        ("--baseline-variant",),
        "str",
        help="The variant others are compared with (default: the first).",
    ),
    Field(
        "compare_with",
        ("--compare-with",),
        "path",
        metavar="FOLDER|RUN",
        help="When the run ends, compare it with a baseline and apply the gate options to that "
        "comparison: regression.md in --out, exit 1 when a gate fails. FOLDER: a folder of "
        "past runs (the latest complete one that finished before this run started, of the "
        "same deployment, that did not fail its own gates); RUN: one run directory, pinned. A"
        " path that does not exist is exit 2; a folder with no eligible run is exit 1 unless "
        "--allow-no-baseline.",
    ),
    Field(
        "executor",
        ("--executor",),
        "str",
        choices=("local", "ray"),
        default="local",
        help="local: this process. ray: shards as Ray tasks (needs runner[ray]), merged into --out"
        " at the end.",
    ),
    Field(
        "ray_address",
        ("--ray-address",),
        "str",
        help="Ray cluster to run on (default: $RAY_ADDRESS, else a cluster started with 'ray "
        "start', else a new local one).",
    ),
    Field(
        "ray_tasks",
        ("--ray-tasks",),
        "int",
        default=4,
        help="Shards, one Ray task each, sharing --concurrency and --rps.",
    ),
    Field(
        "judge",
        ("--judge",),
        "str",
        metavar="DEPLOYMENT:VARIANT",
        help="Score every ok answer with this judge deployment (pointwise). Its prompt gets input,"
        " output, expected and the --judge-var values. Read by default: a JSON object with a "
        "numeric score, MT-Bench's [[n]], Prometheus' [RESULT] n, a last line Score: n (or "
        "Rating:, Grade:, with /10); the last verdict in the answer counts.",
    ),
    Field(
        "pairwise_judge",
        ("--pairwise-judge",),
        "str",
        metavar="DEPLOYMENT:VARIANT",
        help="Compare each candidate with the baseline row by row with this judge, in both orders "
        "(input, output_a, output_b, expected). Read by default: a JSON winner, MT-Bench's "
        "[[A]]/[[B]]/[[C]], Arena-Hard's [[A>>B]] … [[B>>A]], a last line WINNER: A|B|TIE. An"
        " unread answer is a judge error, never a tie.",
    ),
    Field(
        "judge_vars",
        ("--judge-var",),
        "table",
        metavar="NAME=VALUE",
        help="One more prompt input of every judge call (a rubric, say); repeatable.",
    ),
    Field(
        "judge_scale",
        ("--judge-scale",),
        "str",
        metavar="MIN-MAX",
        help="The pointwise judge's scale (e.g. 1-10), mapped onto 0-1 (default: 0-1, or the "
        "denominator of a 'Score: 7/10' line).",
    ),
    Field(
        "judge_pattern",
        ("--judge-pattern",),
        "str",
        metavar="REGEX",
        help="Read the pointwise judge's score with REGEX instead: the first group of its last "
        "match is the score.",
    ),
    Field(
        "pairwise_pattern",
        ("--pairwise-pattern",),
        "str",
        metavar="REGEX",
        help="Read the pairwise judge's winner with REGEX instead: the first group of its last "
        "match is A, B, or a tie word (tie, C, draw, equal, =).",
    ),
    Field(
        "max_judge_error_rate",
        ("--max-judge-error-rate",),
        "float",
        metavar="SHARE",
        help="Largest share (0-1) of a judge's calls that may fail or answer nothing readable; "
        "above it the run exits 4, with every report written (default 0.05).",
    ),
    Field(
        "max_error_rate_increase",
        ("--max-error-rate-increase",),
        "float",
        metavar="POINTS",
        help="Fail if a variant's error rate rises by more than POINTS percentage points.",
    ),
    Field(
        "max_p95_latency_increase",
        ("--max-p95-latency-increase",),
        "float",
        metavar="PERCENT",
        help="Fail if a variant's p95 latency rises by more than PERCENT %.",
    ),
    Field(
        "max_score_drop",
        ("--max-score-drop",),
        "float",
        metavar="POINTS",
        help="Fail if a variant's mean score falls by more than POINTS points (0-100).",
    ),
    Field(
        "min_agreement",
        ("--min-agreement",),
        "float",
        metavar="SHARE",
        help="Fail if fewer than SHARE (0-1) of outputs are identical to the baseline's.",
    ),
    Field(
        "require_significance",
        ("--require-significance",),
        "float",
        metavar="ALPHA",
        help="Score and error gates fail only when the change is significant at ALPHA (by the test"
        " the comparison names; intervals are then shown at 1 - ALPHA).",
    ),
    Field(
        "min_coverage",
        ("--min-coverage",),
        "float",
        metavar="SHARE",
        help="Fail if fewer than SHARE (0-1) of the baseline's calls have a partner (default 1.0 "
        "whenever another gate is set).",
    ),
    Field(
        "min_win_rate",
        ("--min-win-rate",),
        "float",
        metavar="SHARE",
        help="Fail if a candidate's pairwise win rate against its baseline (wins plus half the "
        "ties, over the pairs the pairwise judge gave a verdict) is below SHARE (0-1).",
    ),
    Field(
        "min_judge_consistency",
        ("--min-judge-consistency",),
        "float",
        metavar="SHARE",
        help="Fail if fewer than SHARE (0-1) of the pairs the pairwise judge read in both orders "
        "got the same verdict in both (default 0.6 whenever --min-win-rate is set).",
    ),
    Field(
        "allow_no_baseline",
        ("--allow-no-baseline",),
        "bool",
        help="When the folder of runs holds no eligible baseline (a first night, or a CI cache "
        "miss), pass with no gate applied and say so, instead of failing (exit 1: the gates "
        "were not applied).",
    ),
    Field(
        "allow_different_deployment",
        ("--allow-different-deployment",),
        "bool",
        help="Compare with a baseline run of another deployment (refused otherwise).",
    ),
    Field(
        "segment_columns",
        ("--segment-column",),
        "strs",
        metavar="COL",
        help="Break the summary and comparison down by this metadata or input column (repeatable):"
        " summary_by_segment.parquet, comparison_by_segment.parquet and report.html.",
    ),
    Field(
        "no_report",
        ("--no-report",),
        "bool",
        help="Write no reports at the end (a backfill); 'runner report OUT' writes them later. "
        "Gates and the error budget still apply.",
    ),
    Field(
        "export_to",
        ("--export",),
        "path",
        key="export",
        metavar="PATH",
        help="When the run ends, write the dataset plus its outputs and scores to PATH, as 'runner"
        " export OUT --to PATH' does (format from the extension: .parquet, .csv, .jsonl). "
        "Checked before the first call: never a file of the dataset, never inside --out, "
        "never an existing path without --overwrite.",
    ),
    Field(
        "overwrite",
        ("--overwrite",),
        "bool",
        help="With --export: replace PATH if it exists.",
    ),
    Field(
        "export_prefix",
        ("--export-prefix",),
        "str",
        metavar="PREFIX",
        help="With --export: name the added columns PREFIX<column> (when the dataset already has a"
        " column named like one of them).",
    ),
    Field(
        "csv_raw",
        ("--csv-raw",),
        "bool",
        help="With --export to .csv: write cells that start with = + - @ as they are (by default "
        "they get a leading ' so a spreadsheet cannot run them).",
    ),
    Field(
        "fresh_process_from",
        ("--fresh-process-from",),
        "int",
        default=FRESH_PROCESS_FROM,
        metavar="CALLS",
        help="Runs of at least CALLS calls compact, judge, export and report in a fresh process "
        "that takes over the lock (the sending heap is not kept under the reports: a "
        "1,000,000 x 2 run peaks at 312 MB). 0: never.",
    ),
)

#: Every field by parameter name.
BY_PARAM: Final = {field.param: field for field in FIELDS}
