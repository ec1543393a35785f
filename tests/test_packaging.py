"""Packaging tells the truth: what the code imports is declared, and the wheel works alone.

The wheel test is offline by design: it builds with the hatchling of this environment (a dev
dependency, ``--no-build-isolation``), installs the wheel with ``--no-deps --no-index`` into a
fresh virtual environment, and makes the dependencies visible there through a ``.pth`` file
naming this environment's site-packages. A ``.pth`` line that is a path adds that one
directory and processes no ``.pth`` file inside it, so the editable install of the
repository is not activated: the fresh environment sees the installed wheel and nothing of
the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from runner.experiment._demo import sample_dataset

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "runner"
#: pip offline, leaving nothing behind outside tmp_path (no cache, no version check).
PIP = [sys.executable, "-m", "pip", "--quiet", "--no-input", "--no-cache-dir",
       "--disable-pip-version-check"]  # fmt: skip


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalized(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in requirements}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module imported → the package files that import it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "runner" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_package_is_declared() -> None:
    """Each third-party module runner imports comes from a distribution pyproject declares:
    a dependency, or a user-facing extra (``ray``); the dev tools do not count."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    optional = _requirement_names([r for name in extras if name != "dev" for r in extras[name]])
    distributions = packages_distributions()
    imports = _third_party_imports()
    assert {"aiohttp", "yarl", "numpy", "polars"} <= imports.keys()  # the scan sees imports
    undeclared = {
        module: sorted(files)
        for module, files in imports.items()
        if not {_normalized(d) for d in distributions.get(module, [module])} & (declared | optional)
    }
    assert undeclared == {}


def _unused(declared: set[str], imports: set[str]) -> set[str]:
    """The declared distributions none of whose top-level modules is imported."""
    provides: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            provides.setdefault(_normalized(dist), set()).add(module)
    # A distribution not installed here maps by its own name (pyarrow -> pyarrow).
    return {d for d in declared if not provides.get(d, {d.replace("-", "_")}) & imports}


def test_every_declared_dependency_is_imported() -> None:
    """Each name in [project].dependencies is imported somewhere under runner/: a dependency
    kept "for" a library that no longer runs (sniffio for httpcore's pool) fails here."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _requirement_names(project["dependencies"])
    imports = set(_third_party_imports())
    assert _unused(declared | {"sniffio", "tenacity"}, imports) == {"sniffio", "tenacity"}
    assert _unused(declared, imports) == set()


def test_the_demo_sample_ships_inside_the_package() -> None:
    """The demo reads its tickets from runner/data, not from the repository around it."""
    with sample_dataset() as path:
        assert path.is_relative_to(PACKAGE / "data")
        assert path.read_text(encoding="utf-8").splitlines()[0] == "id,ticket,plan,expected"


def _run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_the_wheel_installed_alone_runs_the_demo_in_an_empty_directory(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv, run ``runner demo`` far from the repo."""
    dist = tmp_path / "dist"
    build = ["wheel", "--no-index", "--no-deps", "--no-build-isolation", str(REPO), "-w", str(dist)]
    _run([*PIP, *build], cwd=tmp_path)
    [wheel] = dist.glob("runner-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {"runner/data/tickets.csv", "runner/py.typed"} <= set(archive.namelist())

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([*PIP, "--python", str(python), "install", "--no-index", "--no-deps", str(wheel)])
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "runner-test-deps.pth").write_text("\n".join(sorted(ours)) + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(FETCH_HIVE_API_KEY="", FETCH_HIVE_BASE_URL="", PYTHONDONTWRITEBYTECODE="1")
    probe = "import json, sys, runner; print(json.dumps([runner.__file__, sys.path]))"
    where = _run([str(python), "-c", probe], cwd=empty, env=env)
    module_file, path = json.loads(where.stdout)
    assert Path(module_file).is_relative_to(venv)
    assert not any(entry and Path(entry).resolve() == REPO for entry in path)

    demo = _run([str(venv / "bin" / "runner"), "demo", "--out", "out", "--rows", "10"],
                cwd=empty, env=env)  # fmt: skip
    assert "Traceback" not in demo.stderr
    assert (empty / "out" / "report.html").stat().st_size > 0
    manifest = json.loads((empty / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "complete"
    assert sorted(os.listdir(empty)) == ["out"]
