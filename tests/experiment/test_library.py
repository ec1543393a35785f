"""The library behaves like a library: in a notebook cell, under async code, in a thread."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from runner.config import RunConfig
from runner.run._job import arun_job, run_job
from runner.run._session import RunResult
from tests.fakes import FakeApi, ok_response

MakeConfig = Callable[..., RunConfig]


def test_run_job_inside_a_running_event_loop_runs_on_a_worker_thread(
    make_config: MakeConfig, fake_api: FakeApi
) -> None:
    """A notebook cell already runs an event loop; a plain call must still work there."""
    config = make_config(limit=5)

    async def cell() -> RunResult:
        return run_job(config, api_key="fhk_test", transport=fake_api.transport)

    result = asyncio.run(cell())
    assert result.status == "complete"
    assert result.counts == {"ok": 10}


def test_arun_job_is_awaited_from_async_code(make_config: MakeConfig, fake_api: FakeApi) -> None:
    config = make_config(limit=3)

    async def main() -> RunResult:
        return await arun_job(config, api_key="fhk_test", transport=fake_api.transport)

    result = asyncio.run(main())
    assert result.status == "complete"
    assert len(fake_api.bodies) == 6


def test_run_job_in_a_plain_thread_raises_plain_errors(make_config: MakeConfig) -> None:
    """No ExceptionGroup and no signal handlers: a validation error is the error itself."""
    config = make_config(dataset=("/nonexistent/rows.csv",))
    caught: list[BaseException] = []

    def work() -> None:
        try:
            run_job(config, api_key="fhk_test")
        except BaseException as exc:  # the test inspects whatever came out
            caught.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert len(caught) == 1
    assert type(caught[0]).__name__ == "InputError"


def test_run_job_leaves_signal_handlers_alone(make_config: MakeConfig, fake_api: FakeApi) -> None:
    """The CLI asks for SIGTERM/SIGHUP handling; a library call leaves them to the caller.
    (SIGINT is asyncio's own while any event loop runs: it raises KeyboardInterrupt.)"""
    watched = (signal.SIGTERM, signal.SIGHUP)
    before = [signal.getsignal(s) for s in watched]
    seen: list[Any] = []

    def respond(body: dict[str, Any], attempt: int) -> Any:
        seen.append([signal.getsignal(s) for s in watched])
        return ok_response(body)

    fake_api.respond = respond
    run_job(make_config(limit=2), api_key="fhk_test", transport=fake_api.transport)
    assert seen and all(handlers == before for handlers in seen)


def test_results_load_as_a_polars_frame(make_config: MakeConfig, fake_api: FakeApi) -> None:
    import runner

    result = run_job(make_config(limit=4), api_key="fhk_test", transport=fake_api.transport)
    frame = runner.read_results(result.out_dir)
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 8


def test_the_python_api_example_in_the_readme_runs(tmp_path: Path) -> None:
    """The README's "Python API" block, run as it is written (against the simulator)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python", 1)[1].split("```", 1)[0]
    source = tmp_path / "rows.csv"
    pl.DataFrame({"id": ["a", "b"], "ticket": ["x", "y"], "expected": ["x", "y"]}).write_csv(source)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "reports" / "example" / "report.html").exists()


def test_a_resume_command_follows_a_message_after_one_full_stop() -> None:
    from runner.experiment._stages import _with_resume

    said = "the daily limit is reached; judged so far in OUT/judge/pass-000."
    assert _with_resume(said, "runner run x --resume").endswith(
        "pass-000. Resume with: runner run x --resume"
    )
    assert _with_resume("stopped", None) == "stopped"
