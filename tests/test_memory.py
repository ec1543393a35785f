"""MemoryPlan: the piece sizes of the stages after sending, checked when built."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from runner.errors import ConfigError
from runner.memory import DEFAULT_MEMORY, MemoryPlan


def test_a_plan_names_only_the_fields_it_changes() -> None:
    plan = MemoryPlan(bucket_rows=7)
    assert plan.bucket_rows == 7
    assert dataclasses.replace(plan, bucket_rows=DEFAULT_MEMORY.bucket_rows) == DEFAULT_MEMORY


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "8"])
def test_a_size_that_is_not_a_positive_int_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigError, match=r"MemoryPlan\.score_rows must be a positive int"):
        MemoryPlan(score_rows=value)  # type: ignore[arg-type]


def test_a_fan_in_below_two_is_refused_as_it_would_never_finish_merging() -> None:
    with pytest.raises(ConfigError, match="fan_in must be at least 2"):
        MemoryPlan(fan_in=1)


def test_fields_are_keywords_only() -> None:
    with pytest.raises(TypeError):
        MemoryPlan(1024)  # type: ignore[misc]


def test_every_field_says_what_it_trades() -> None:
    """Each field has a docstring (read from the module source) in the class body."""
    import ast
    import inspect

    from runner import memory

    body = next(
        node
        for node in ast.parse(inspect.getsource(memory)).body
        if isinstance(node, ast.ClassDef) and node.name == "MemoryPlan"
    ).body
    documented = {
        target.target.id
        for target, doc in itertools.pairwise(body)
        if isinstance(target, ast.AnnAssign)
        and isinstance(target.target, ast.Name)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
    }
    assert documented == {field.name for field in dataclasses.fields(MemoryPlan)}
