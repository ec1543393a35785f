"""The package's layers hold (import-linter, run by ./dev check), and a violating import is
caught; packages import each other through their doors only."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the ``runner`` package in ``tree``, with the project's contracts."""
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_layers_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported", "name"),
    [
        ("report/_tables.py", "run", "run_job"),  # a report pulling in the send stack
        ("gates/_markdown.py", "report", "build_reports"),  # one stage importing another
        ("judge/_parse.py", "export", "export_run"),
    ],
)
def test_an_import_against_the_layers_breaks_them(
    tmp_path: Path, module: str, imported: str, name: str
) -> None:
    """A report that pulls in the send stack, or one stage after sending importing another
    (only the experiment composes them), fails ./dev check."""
    shutil.copytree(
        ROOT / "runner", tmp_path / "runner", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = tmp_path / "runner" / module
    path.write_text(path.read_text() + f"\nfrom runner.{imported} import {name}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    package = module.split("/")[0]
    assert f"runner.{package} is not allowed to import runner.{imported}" in result.stdout


def test_packages_import_each_other_through_their_doors() -> None:
    """``from runner.store import RunDir``, never ``from runner.store._rundir import RunDir``
    from another package: a private module is its package's business."""
    offenders = []
    for path in (ROOT / "runner").rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        here = parts[1] if len(parts) > 2 else None
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = node.module.split(".")
                private = len(names) > 2 and names[2].startswith("_")
                if (
                    names[0] == "runner"
                    and private
                    and names[1] != here
                    and parts[1] != "__init__.py"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert offenders == []
