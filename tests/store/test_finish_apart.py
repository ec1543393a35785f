"""A large run ends in a fresh process: the session that sent everything leaves the journal
uncompacted and the manifest ``running``; :func:`finish_deferred` compacts and completes it.
Until that happens no reader may take the run for complete."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runner.config import RunConfig
from runner.errors import RunDirLocked, RunInterrupted
from runner.run._job import run_job
from runner.store._finishing import FINISHING, finish_deferred
from runner.store._manifest import RunStatus
from runner.store._results import read_results
from runner.store._rundir import RunDir
from tests.fakes import FakeApi

CALLS = 40  # tickets_csv: 20 rows x 2 variants


def deferred_run(config: RunConfig, fake_api: FakeApi) -> RunDir:
    result = run_job(config, api_key="k", transport=fake_api.transport, defer_from=CALLS)
    assert not result.compacted and result.status is RunStatus.RUNNING
    return RunDir(config.out_dir)


def test_a_deferred_session_leaves_the_run_running_until_it_is_compacted(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    rundir = deferred_run(make_config(), fake_api)
    waiting = rundir.read_manifest()
    assert (waiting.status, waiting.reason, waiting.planned) == (RunStatus.RUNNING, FINISHING, 40)
    assert waiting.sessions[-1].status is RunStatus.COMPLETE  # the session itself sent it all
    assert not rundir.results.exists()

    assert finish_deferred(rundir.root)
    manifest = rundir.read_manifest()
    assert manifest.status is RunStatus.COMPLETE and manifest.reason is None
    assert manifest.counts == {"ok": CALLS, "error": 0}
    assert read_results(rundir.root).height == CALLS
    assert not finish_deferred(rundir.root)  # a second call changes nothing
    assert rundir.read_manifest() == manifest


def test_below_the_threshold_the_session_compacts_as_before(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    config = make_config()
    result = run_job(config, api_key="k", transport=fake_api.transport, defer_from=CALLS + 1)
    assert result.compacted and result.status is RunStatus.COMPLETE
    assert result.counts == {"ok": CALLS}


def test_a_finisher_that_never_ran_is_completed_by_a_resume_that_sends_nothing(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    config = make_config()
    deferred_run(config, fake_api)
    sent = len(fake_api.bodies)
    again = run_job(make_config(resume=True), api_key="k", transport=fake_api.transport)
    assert len(fake_api.bodies) == sent
    assert again.status is RunStatus.COMPLETE and again.counts == {"ok": CALLS}


def test_a_journal_short_of_the_plan_is_never_called_complete(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    rundir = deferred_run(make_config(), fake_api)
    lines = rundir.journal.read_bytes().splitlines(keepends=True)
    rundir.journal.write_bytes(b"".join(lines[:-3]))
    with pytest.raises(RunInterrupted, match=f"holds {CALLS - 3} of {CALLS} outcomes"):
        finish_deferred(rundir.root)
    manifest = rundir.read_manifest()
    assert manifest.status is RunStatus.INTERRUPTED
    assert manifest.counts == {"ok": CALLS - 3, "error": 0}


def test_the_finisher_waits_for_no_one_another_runner_holding_the_lock_is_an_error(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    import subprocess
    import sys

    rundir = deferred_run(make_config(), fake_api)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from runner.store._rundir import RunDir\n"
         "with RunDir(sys.argv[1]).locked():\n print('held', flush=True); sys.stdin.read()",
         str(rundir.root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirLocked):
            finish_deferred(rundir.root)
    finally:
        holder.communicate("")
    assert rundir.read_manifest().status is RunStatus.RUNNING


def test_the_hidden_finish_command_refuses_what_run_did_not_pass(
    make_config: Callable[..., RunConfig], fake_api: FakeApi
) -> None:
    from click.testing import CliRunner

    from runner.cli import main

    rundir = deferred_run(make_config(), fake_api)
    result = CliRunner().invoke(main, ["_finish", str(rundir.root), "not json"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert rundir.read_manifest().status is RunStatus.RUNNING  # nothing touched
