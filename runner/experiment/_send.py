"""The first two stages: send every call, compact the journal; and the fresh process.

A large run (``Experiment.fresh_process_from`` calls or more) ends in a fresh process, so the
heap of sending never sits under the heap of compaction or of the reports (BENCHMARKS.md,
issue 11). That process is the installed runner started by absolute path with ``-P`` (nothing
from the working directory is imported), is given nothing but ``OUT`` and the descriptor that
holds OUT's lock (it reads ``OUT/experiment.toml`` and the manifest's stage), and adopts the
lock without a moment in which another runner could take it. The CLI replaces itself with it
(``exec``); a library caller's process starts it and waits for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from runner.errors import (
    ErrorBudgetExceeded,
    GateFailed,
    RunAborted,
    RunInterrupted,
    RunnerError,
    StorageError,
)
from runner.experiment._model import Stage
from runner.store import FINISHING, Manifest, RunDir, RunStatus, finish_deferred, remove_stale_temps

if TYPE_CHECKING:
    from runner.config import RunConfig
    from runner.experiment._stages import _Run


def send(run: _Run) -> bool:
    """Send what has no outcome yet and compact; True when the later stages go on in this
    process, False when a fresh process ran them (its outcome is in ``run.result``)."""
    from runner.run import run_job

    experiment, rundir = run.experiment, run.rundir
    config = experiment.config
    earlier = rundir.read_manifest() if config.resume and rundir.has_manifest() else None
    if run.adopted:
        pass  # a fresh process: the lock is ours, the work is the one just sent
    elif earlier is not None and earlier.sending_done and not _errors_to_retry(config, earlier):
        _check_unchanged(run)
        run.stack.enter_context(rundir.locked())
        _reopen(rundir, run)
        _keep_experiment(run)
    elif experiment.executor == "ray":
        _send_on_ray(run)
        _keep_experiment(run)
    else:
        result = run_job(
            config,
            api_key=run.api_key,
            display=run.hooks.display,
            policy=run.hooks.policy,
            transport=run.hooks.transport,
            handle_signals=run.hooks.handle_signals,
            resume_command=run.hooks.resume_command,
            quit_now=run.hooks.quit_now,
            defer_from=experiment.fresh_process_from or None,
            hold=run.stack,
            on_start=lambda: _keep_experiment(run),  # before the first call: a stopped run keeps it
        )
        run.result.sent["send"] = result.counters.done
        run.heavy = True
    manifest = rundir.read_manifest()
    large = 0 < experiment.fresh_process_from <= (manifest.planned or 0)
    if manifest.status is RunStatus.RUNNING and manifest.reason == FINISHING:
        if large and run.heavy:
            return _continue_apart(run)
        run.result.stage = Stage.COMPACT
        finish_deferred(rundir.root, say=run.hooks.say)
        run.heavy = True
    if large and run.heavy:
        return _continue_apart(run)
    return True


def _errors_to_retry(config: RunConfig, manifest: Manifest) -> bool:
    """``--retry-errors`` on a run with error outcomes: sending has work again."""
    return config.retry_errors and bool(manifest.counts.get("error"))


def _check_unchanged(run: _Run) -> None:
    """A resume of a run whose sending is done: the dataset and the work must be the ones it
    was sent with (the options that change the work are refused, naming them)."""
    from runner.dataset import open_dataset
    from runner.run import check_resume, check_segments, fingerprint_of, resolve_api_key

    config = run.experiment.config
    resolve_api_key(config, run.api_key)
    dataset = open_dataset(config)
    check_segments(config, dataset)
    check_resume(config, run.rundir, run.rundir.read_manifest(), fingerprint_of(config, dataset))


def _reopen(rundir: RunDir, run: _Run) -> None:
    """Under the lock: a run stopped after sending goes on; its manifest says so again."""
    manifest = rundir.read_manifest()
    if manifest.status is not RunStatus.RUNNING or manifest.reason != FINISHING:
        manifest.status, manifest.reason = RunStatus.COMPLETE, None
    manifest.config = run.experiment.config.to_dict()
    rundir.write_manifest(manifest)
    remove_stale_temps(rundir.root)
    run.result.sent["send"] = 0


def _send_on_ray(run: _Run) -> None:
    from runner.scale import RayOptions, run_on_ray

    experiment = run.experiment
    result = run_on_ray(
        experiment.config,
        api_key=run.api_key,
        options=RayOptions(address=experiment.ray_address, tasks=experiment.ray_tasks),
        display=run.hooks.display,
        resume_command=run.hooks.resume_command,
    )
    run.result.sent["send"] = result.counters.done
    run.stack.enter_context(run.rundir.locked())


def _keep_experiment(run: _Run) -> None:
    """``OUT/experiment.toml``: the experiment as it runs now (absolute paths), for ``runner
    rerun`` and for the fresh process, which reads nothing else.

    Written under OUT's lock by every session that goes on with the run, once its checks
    passed (a refused resume leaves the file as it was): a sending session right after its
    manifest's first write, before the first call, so a run stopped while sending (Ctrl-C,
    the daily cap, a full disk) keeps it; a resume writes it again with its own options (a
    corrected judge), as its manifest records them. The fresh process reads it, never writes.
    """
    from runner.experiment._file import experiment_toml
    from runner.experiment._model import experiment_params
    from runner.store import atomic_write_text

    out = os.path.abspath(run.rundir.root)
    header = (
        f"The experiment of run {out} (written by runner run).\n"
        f"Run it again with: runner rerun {out}"
    )
    params = experiment_params(run.experiment)
    atomic_write_text(run.rundir.experiment, experiment_toml(params, header=header))


# --------------------------------------------------------------------- the fresh process


def fresh_process_args(out: Path, lock_fd: int) -> list[str]:
    """The command of the fresh process: this interpreter, ``-P`` (the working directory is
    not put on ``sys.path``), the installed runner's ``__main__`` by absolute path."""
    import runner

    main = Path(runner.__file__).resolve().parent / "__main__.py"
    return [sys.executable, "-P", str(main), "_finish", str(out.absolute()), str(lock_fd)]


def _continue_apart(run: _Run) -> bool:
    from runner.experiment._stages import flush_std

    lock = run.held_lock()
    args = fresh_process_args(run.rundir.root, lock.fd)
    os.set_inheritable(lock.fd, True)
    flush_std()
    if run.hooks.replace_process:
        _exec(args)
    code = subprocess.run(args, pass_fds=(lock.fd,), check=False).returncode
    run.result.exit_code = code
    manifest = run.rundir.read_manifest()
    run.result.status = RunStatus(manifest.status)
    run.result.stage = Stage(manifest.stage) if manifest.stage else Stage.SEND
    run.result.verdicts.update(manifest.stages)
    if code:
        run.result.error = _error_of(code, manifest)
    return False


def _exec(args: list[str]) -> NoReturn:
    os.execv(args[0], args)


def _error_of(code: int, manifest: Manifest) -> RunnerError:
    kinds: dict[int, type[RunnerError]] = {
        1: GateFailed, 3: RunAborted, 4: ErrorBudgetExceeded, 5: StorageError, 130: RunInterrupted,
    }  # fmt: skip
    why = manifest.reason or f"the finishing process ended with exit code {code}"
    return kinds.get(code, RunnerError)(why)
