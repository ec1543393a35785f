"""Pure polars: results in, summaries and comparisons out. The one door to:

* :func:`summarize` — one row per variant (``summary.parquet``), in :mod:`runner.stats._summary`;
* :func:`compare_variants` — each variant against the baseline, paired by row
  (``comparison.parquet``), and :func:`paired_metrics`, the metrics of one pairing shared
  with :mod:`runner.gates`, in :mod:`runner.stats._paired`;
* :func:`side_by_side` — one row per row with every variant's answer
  (``side_by_side.parquet``), in :mod:`runner.stats._side_by_side`;
* what they share (the streaming engine, pair keys, variants, binary scores, options), in
  :mod:`runner.stats._frames`.

Every query scans the results lazily on the streaming engine with the columns it needs, and
outputs are compared by hash: memory does not grow with the run.
"""

from __future__ import annotations

from runner.stats._frames import (
    DEFAULT_OPTIONS,
    ENGINE,
    PAIR_KEYS,
    GradedTest,
    Results,
    StatOptions,
    lazy_results,
    scores_are_binary,
    variants_of,
)
from runner.stats._paired import (
    COMPARISON_SCHEMA,
    Verdict,
    compare_variants,
    metrics_frame,
    paired_metrics,
    pairs_of,
    score_verdict,
)
from runner.stats._side_by_side import (
    SIDE_BY_SIDE_RANK,
    in_side_by_side_order,
    side_by_side,
    side_by_side_flagged,
)
from runner.stats._summary import (
    ERROR_FIELDS,
    EXAMPLE_CHARS,
    LATENCY_QUANTILES,
    SUMMARY_COLUMNS,
    TOP_ERRORS,
    latency_boxes,
    summarize,
)

__all__ = [
    "COMPARISON_SCHEMA",
    "DEFAULT_OPTIONS",
    "ENGINE",
    "ERROR_FIELDS",
    "EXAMPLE_CHARS",
    "LATENCY_QUANTILES",
    "PAIR_KEYS",
    "SIDE_BY_SIDE_RANK",
    "SUMMARY_COLUMNS",
    "TOP_ERRORS",
    "GradedTest",
    "Results",
    "StatOptions",
    "Verdict",
    "compare_variants",
    "in_side_by_side_order",
    "latency_boxes",
    "lazy_results",
    "metrics_frame",
    "paired_metrics",
    "pairs_of",
    "score_verdict",
    "scores_are_binary",
    "side_by_side",
    "side_by_side_flagged",
    "summarize",
    "variants_of",
]
