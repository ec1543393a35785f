"""The options of the sending stage: the dataset, what is sent to which deployment, how fast,
how it is retried, and the run directory it goes to (a part of the option table)."""

from __future__ import annotations

from typing import Final

from runner.experiment._field import CONFIG, Field

SENDING: Final[tuple[Field, ...]] = (
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
)
