"""The options of the stages after sending: scoring, judges, gates and the baseline, reports,
export, the Ray executor and the fresh process at the end (a part of the option table)."""

from __future__ import annotations

from typing import Final

from runner.experiment._field import FRESH_PROCESS_FROM, Field

AFTER_SENDING: Final[tuple[Field, ...]] = (
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
        "[[A]]/[[B]]/[[C]], Arena-Hard's [[A>>B]] … [[B>>A]], two ratings [[8, 6]], "
        "Prometheus' [RESULT] A|B, a last line WINNER: A|B|TIE; the last verdict in the answer "
        "counts. An unread answer is a judge error, never a tie.",
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
