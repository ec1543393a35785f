"""Throughput and memory of the runner against the simulator, next to a bare client and the ideal.

    ./dev python -m bench.run                   # everything: about 60 minutes on 2 cores
    ./dev python -m bench.run --quick           # one round, small inputs: about 5 minutes
    ./dev python -m bench.run --only throughput # or --only cpu, startup, memory
    ./dev python -m bench.run --only throughput --levels 32,128 --rows 4000,7680 \
        --stream-levels '' --also base=/path/to/other/checkout   # issue 14's levels, A/B

Each level sends about 40 s of requests at the ideal rate (at most 100,000), so that the
runner's fixed costs (about 1 s of start-up, 3 s of reports at the end) weigh a few percent,
as they do in a real run; shorter runs (``--seconds``) measure mostly those fixed costs.

Each measurement is a separate process, started and timed from here, so that resource usage
(``os.wait4``) and peak RSS belong to that process alone:

* the simulator (``bench.simproc``, one process or several on one port), 50 ms latency;
* the runner end to end: ``python -m runner run DATA --out DIR …``, results and summary
  written, timed from ``exec`` to exit;
* the bare reference (``bench.reference``): an aiohttp loop under a semaphore that only sends;
* the ideal: ``concurrency / latency``.

Runner and reference alternate level by level within each round, so a noisy neighbour costs
both alike; the table reports the median of the rounds. Memory runs send a 100,000-row and a
1,000,000-row Parquet file through two variants against a zero-latency simulator and record the
runner's peak RSS and the time from ``exec`` to its first request. ``--only cpu`` is the
CPU-bound level (simulator at 0 ms); ``--only startup`` times ``exec`` to the first request on
a 1,000,000-row Parquet file and stops the run with SIGINT. ``--also NAME=DIR`` measures the
runner of another checkout in the same rounds (labelled ``runner@NAME``). Results go to
``bench/out/results.json`` and ``bench/out/table.md``; ``--table-from`` prints them again.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
TEXT = "ticket {i}: my invoice was charged twice, please refund"


# --- processes -------------------------------------------------------------------------------


@dataclass
class Usage:
    """What one child process cost: wall seconds, CPU seconds, peak RSS in MB."""

    wall: float
    cpu: float
    maxrss_mb: float
    stdout: str = field(repr=False, default="")
    rss: list[tuple[float, float]] = field(repr=False, default_factory=list)
    """(epoch seconds, RSS in MB) sampled every 0.1 s while the process ran."""


def run_measured(args: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Usage:
    """Run one process to its end; its own rusage from ``os.wait4`` (not the whole tree's),
    taken by ``bench/measured.py``, a launcher that imports nothing heavy: a child's peak RSS
    starts at its parent's peak, and this process holds polars and the datasets."""
    started = time.perf_counter()
    out_path = OUT / f"child-{os.getpid()}.stdout"  # per bench process: two may run at once
    err_path = OUT / f"child-{os.getpid()}.stderr"
    usage_path = OUT / f"child-{os.getpid()}.usage.json"
    usage_path.unlink(missing_ok=True)
    samples: list[tuple[float, float]] = []
    launcher = [sys.executable, str(ROOT / "bench" / "measured.py"), str(usage_path), "--"]
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([*launcher, *args], cwd=cwd, env=env, stdout=out, stderr=err)
        sampler = threading.Thread(target=_sample_rss, args=(proc.pid, samples), daemon=True)
        sampler.start()
        proc.wait()
    wall = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0 or not usage_path.exists():
        raise RuntimeError(
            f"{' '.join(args[:5])} … failed ({proc.returncode}):\n{err_path.read_text()[-3000:]}"
        )
    usage = json.loads(usage_path.read_text())
    cpu = usage["utime"] + usage["stime"]
    stdout = out_path.read_text()
    for path in (out_path, err_path, usage_path):
        path.unlink()
    return Usage(wall, cpu, usage["maxrss_kb"] / 1024, stdout, samples)


def _sample_rss(launcher: int, samples: list[tuple[float, float]]) -> None:
    """The RSS of the launcher's child (the measured command) every 0.1 s."""
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    children = Path(f"/proc/{launcher}/task/{launcher}/children")
    pid = None
    while True:
        try:
            if pid is None:
                found = children.read_text().split()
                if not found:
                    time.sleep(0.01)
                    continue
                pid = int(found[0])
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return
        if resident == 0:  # exited, not yet reaped
            return
        samples.append((time.time(), resident * page_mb))
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """CPU seconds a running process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Simulator:
    """``procs`` simulator processes serving one port on 127.0.0.1."""

    def __init__(self, latency_ms: float, procs: int = 1) -> None:
        self.latency_ms = latency_ms
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.procs: list[subprocess.Popen[str]] = []
        args = [PY, "-m", "bench.simproc", "--port", str(self.port)]
        args += ["--latency-ms", str(latency_ms)]
        if procs > 1:
            args.append("--reuse-port")
        for _ in range(procs):
            proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            assert proc.stdout is not None
            if not proc.stdout.readline().strip():
                raise RuntimeError("the simulator did not start")

    def cpu(self) -> float:
        return sum(proc_cpu(p.pid) for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)


@contextmanager
def simulator(latency_ms: float, procs: int) -> Iterator[Simulator]:
    sim = Simulator(latency_ms, procs)
    try:
        yield sim
    finally:
        sim.close()


# --- datasets --------------------------------------------------------------------------------


def dataset(rows: int) -> Path:
    """A Parquet file of ``rows`` tickets (id, text), built once and kept in bench/out/data."""
    path = OUT / "data" / f"tickets-{rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = pl.int_range(0, rows, eager=True).cast(pl.String)
        frame = pl.DataFrame({"id": "r" + ids, "text": "ticket " + ids + TEXT[len("ticket {i}") :]})
        frame.write_parquet(path)
    return path


# --- one measurement -------------------------------------------------------------------------


@dataclass
class Measure:
    """One client run against the simulator."""

    client: str
    concurrency: int
    requests: int
    wall: float
    cpu: float
    maxrss_mb: float
    sim_cpu: float
    send_seconds: float | None = None
    first_request_s: float | None = None
    send_peak_mb: float | None = None
    """Peak RSS up to the last answer (the rest is compaction and reports)."""

    @property
    def rps(self) -> float:
        return self.requests / self.wall

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu / self.requests * 1000

    @property
    def sim_cpu_per_1k(self) -> float:
        return self.sim_cpu / self.requests * 1000


def runner_args(
    data: Path, out: Path, url: str, concurrency: int, variants: tuple[str, ...], stream: bool
) -> list[str]:
    args = [PY, "-m", "runner", "run", str(data), "--deployment", "bench", "--out", str(out)]
    for variant in variants:
        args += ["--variant", variant]
    args += ["--base-url", url, "--concurrency", str(concurrency)]
    args += ["--stream"] if stream else []
    return args


def measure_runner(
    sim: Simulator,
    data: Path,
    rows: int,
    concurrency: int,
    *,
    variants: tuple[str, ...] = ("baseline",),
    stream: bool = False,
    label: str = "runner",
    root: Path = ROOT,
) -> Measure:
    out = OUT / "runs" / f"{label}-{concurrency}-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "FETCH_HIVE_API_KEY": "fhk_bench"}
    cpu0 = sim.cpu()
    wall_start = time.time()
    # ``python -m runner`` from ``root``: another checkout's runner (its directory comes first
    # on sys.path), to measure two versions alternating against one simulator.
    args = runner_args(data, out, sim.url, concurrency, variants, stream)
    usage = run_measured(args, env=env, cwd=root)
    sim_cpu = sim.cpu() - cpu0
    times = (
        pl.scan_parquet(out / "results.parquet")
        .select(
            pl.len().alias("n"),
            (pl.col("status") == "ok").sum().alias("ok"),
            pl.col("started_at").min().alias("first"),
            pl.col("finished_at").max().alias("last"),
        )
        .collect()
        .row(0, named=True)
    )
    requests = rows * len(variants)
    if times["n"] != requests or times["ok"] != requests:
        raise RuntimeError(f"runner wrote {times['n']} results ({times['ok']} ok), not {requests}")
    first = times["first"].timestamp()
    last = times["last"].timestamp()
    send_peak = max((mb for t, mb in usage.rss if t <= last), default=None)
    shutil.rmtree(out, ignore_errors=True)
    return Measure(
        label,
        concurrency,
        requests,
        usage.wall,
        usage.cpu,
        usage.maxrss_mb,
        sim_cpu,
        send_seconds=last - first,
        first_request_s=first - wall_start,
        send_peak_mb=send_peak,
    )


def measure_reference(sim: Simulator, requests: int, concurrency: int, stream: bool) -> Measure:
    cpu0 = sim.cpu()
    args = [PY, "-m", "bench.reference", "--base-url", sim.url]
    args += ["--concurrency", str(concurrency), "--requests", str(requests)]
    args += ["--stream"] if stream else []
    usage = run_measured(args)
    sim_cpu = sim.cpu() - cpu0
    inner = json.loads(usage.stdout.strip().splitlines()[-1])
    return Measure(
        "reference", concurrency, requests, usage.wall, usage.cpu, usage.maxrss_mb, sim_cpu,
        send_seconds=inner["seconds"],
    )  # fmt: skip


# --- the benchmark ---------------------------------------------------------------------------


def requests_for(concurrency: int, latency_ms: float, seconds: float, cap: int) -> int:
    """Enough requests for ``seconds`` at the ideal rate, so start-up is a small share."""
    ideal = concurrency / (latency_ms / 1000)
    return int(min(cap, max(2000, ideal * seconds)) // 1000 * 1000)


def plan_of(args: argparse.Namespace, latency_ms: float) -> list[tuple[int, int]]:
    """(in flight, requests) pairs: every level by every ``--rows`` count, or by ``--seconds``."""
    levels = [int(x) for x in args.levels.split(",")]
    if args.rows:
        return [(c, int(n)) for c in levels for n in args.rows.split(",")]
    ms = latency_ms or 50.0
    return [(c, requests_for(c, ms, args.seconds, args.max_requests)) for c in levels]


def throughput(
    args: argparse.Namespace,
    results: dict[str, Any],
    *,
    latency_ms: float | None = None,
    key: str = "throughput_runs",
    stream_levels: set[int] | None = None,
) -> None:
    """Runner and reference alternating, pair by pair, round by round, on one simulator."""
    latency_ms = args.latency_ms if latency_ms is None else latency_ms
    stream_levels = args.stream_levels if stream_levels is None else stream_levels
    plan = plan_of(args, latency_ms)
    runs: list[dict[str, Any]] = results.setdefault(key, [])
    with simulator(latency_ms, args.sim_procs) as sim:
        # Warm the simulator (and the page cache) so the first measured run is not special.
        measure_reference(sim, 2000, 64, False)
        for round_ in range(args.runs):
            for c, n in plan:
                data = dataset(n)
                pairs = [("reference", False), ("runner", False)]
                pairs += [(f"runner@{name}", False) for name in args.also]
                if c in stream_levels:
                    pairs += [("reference-stream", True), ("runner-stream", True)]
                for label, stream in pairs:
                    if label.startswith("reference"):
                        m = measure_reference(sim, n, c, stream)
                        m.client = label
                    else:
                        root = args.also.get(label.partition("@")[2], ROOT)
                        m = measure_runner(sim, data, n, c, stream=stream, label=label, root=root)
                    row = asdict(m) | {"round": round_, "rps": m.rps, "load": os.getloadavg()[0]}
                    runs.append(row)
                    print(
                        f"  round {round_ + 1} {latency_ms:g} ms c={c:<4} n={n:<6} {label:<17} "
                        f"{m.rps:8.1f} req/s  "
                        f"cpu {m.cpu_per_1k:5.2f} s/1k  sim cpu {m.sim_cpu_per_1k:5.2f} s/1k  "
                        f"rss {m.maxrss_mb:6.1f} MB  load {row['load']:.1f}",
                        flush=True,
                    )
                    save(results)


def memory(args: argparse.Namespace, results: dict[str, Any]) -> None:
    rows_list = [int(x) for x in args.memory_rows.split(",")]
    runs: list[dict[str, Any]] = results.setdefault("memory_runs", [])
    with simulator(0.0, args.sim_procs) as sim:
        for rows in rows_list:
            data = dataset(rows)
            m = measure_runner(
                sim, data, rows, args.memory_concurrency, variants=("baseline", "candidate"),
                label=f"memory-{rows}",
            )  # fmt: skip
            row = asdict(m) | {"rows": rows, "rps": m.rps, "load": os.getloadavg()[0]}
            runs.append(row)
            print(
                f"  memory rows={rows:<9} {m.rps:8.1f} req/s  peak rss {m.maxrss_mb:6.1f} MB "
                f"(sending {m.send_peak_mb or 0:6.1f} MB)  "
                f"first request {m.first_request_s:5.2f} s  cpu {m.cpu_per_1k:5.2f} s/1k",
                flush=True,
            )
            save(results)


def first_request_after_exec(
    sim: Simulator, data: Path, concurrency: int, root: Path = ROOT
) -> float:
    """Seconds from ``exec`` of ``runner run DATA`` to its first request (the earliest
    ``started_at`` in its journal); the run is then stopped with SIGINT, as a user would."""
    out = OUT / "runs" / f"startup-{os.getpid()}"  # a fresh run each time: nothing to resume
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "FETCH_HIVE_API_KEY": "fhk_bench"}
    args = runner_args(data, out, sim.url, concurrency, ("baseline",), False)
    journal = out / "journal.jsonl"
    exec_at = time.time()
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (journal.exists() and journal.stat().st_size > 0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the runner sent nothing: {proc.stderr.read()[-2000:]!r}")
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    # A line is only taken whole (the first may still have been mid-write when seen).
    lines = [line for line in journal.read_bytes().split(b"\n")[:-1] if line]
    first = min(
        dt.datetime.fromisoformat(json.loads(line)["started_at"]).timestamp() for line in lines
    )
    shutil.rmtree(out, ignore_errors=True)
    return first - exec_at


def startup(args: argparse.Namespace, results: dict[str, Any]) -> None:
    runs: list[dict[str, Any]] = results.setdefault("startup_runs", [])
    rows = args.startup_rows
    data = dataset(rows)
    with simulator(0.0, args.sim_procs) as sim:
        for round_ in range(max(3, args.runs)):
            for label, root in [
                ("runner", ROOT),
                *((f"runner@{n}", r) for n, r in args.also.items()),
            ]:
                seconds = first_request_after_exec(sim, data, 128, root)
                runs.append({"client": label, "rows": rows, "round": round_,
                             "first_request_s": seconds, "load": os.getloadavg()[0]})  # fmt: skip
                print(
                    f"  startup rows={rows:<9} {label:<17} first request {seconds:5.2f} s",
                    flush=True,
                )
                save(results)


def save(results: dict[str, Any]) -> None:
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": rev,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def after_last_answer(run: dict[str, Any]) -> float:
    """Seconds from the runner's last answer to its exit: compaction, reports, shutdown."""
    return float(run["wall"] - run["first_request_s"] - run["send_seconds"])


def throughput_table(runs: list[dict[str, Any]], latency_ms: float) -> list[str]:
    """Medians over rounds, one row per (in flight, requests); ratios are taken pair by pair
    (each runner run against the reference run next to it), then their median."""
    by: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for run in runs:
        by.setdefault((run["client"], run["concurrency"], run["requests"]), []).append(run)
    plan = sorted({(c, n) for _, c, n in by})
    lines = [
        f"Simulator at {latency_ms:g} ms, median of {max(len(v) for v in by.values())} rounds:",
        "",
        "| in flight | requests | ideal req/s | reference req/s | runner | runner req/s | "
        "runner / reference | runner / ideal | runner / reference, sending only | "
        "runner first request s | runner after last answer s | runner CPU s / 1k req | "
        "reference CPU s / 1k req | "
        "simulator CPU s / 1k req | runner peak RSS MB |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = sorted(
        {client for client, _, _ in by if client.startswith("runner")} - {"runner-stream"}
    )
    for (c, n), label in [(cn, label) for cn in plan for label in labels]:
        ref, run = by.get(("reference", c, n), []), by.get((label, c, n), [])
        ideal = c / (latency_ms / 1000) if latency_ms else math.nan
        ref_rps = median([r["rps"] for r in ref])
        run_rps = median([r["rps"] for r in run])
        ratios = [r["rps"] / f["rps"] for r, f in zip(run, ref, strict=False)]
        # First request to last answer, against the reference's own send loop: the
        # runner's start-up and reports left out, to show where a gap comes from.
        sending = [f["send_seconds"] / r["send_seconds"] for r, f in zip(run, ref, strict=False)]
        lines.append(
            f"| {c} | {n:,} | {ideal:,.0f} | {ref_rps:,.0f} | {label} | "
            f"{run_rps:,.0f} | {median(ratios):.2f} | {run_rps / ideal:.2f} | "
            f"{median(sending):.2f} | "
            f"{median([r['first_request_s'] for r in run]):.2f} | "
            f"{median([after_last_answer(r) for r in run]):.2f} | "
            f"{median([r['cpu'] / r['requests'] * 1000 for r in run]):.2f} | "
            f"{median([r['cpu'] / r['requests'] * 1000 for r in ref]):.2f} | "
            f"{median([r['sim_cpu'] / r['requests'] * 1000 for r in run]):.2f} | "
            f"{median([r['maxrss_mb'] for r in run]):.0f} |"
        )
    streamed = sorted({(c, n) for (client, c, n) in by if client == "runner-stream"})
    if streamed:
        lines += [
            "",
            "Streaming (`--stream`), same rounds:",
            "",
            "| in flight | requests | runner stream req/s | runner req/s | stream / non-stream | "
            "reference stream req/s | runner stream / reference stream |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c, n in streamed:
            st, run = by[("runner-stream", c, n)], by.get(("runner", c, n), [])
            rst = by.get(("reference-stream", c, n), [])
            lines.append(
                f"| {c} | {n:,} | {median([r['rps'] for r in st]):,.0f} | "
                f"{median([r['rps'] for r in run]):,.0f} | "
                f"{median([s['rps'] / r['rps'] for s, r in zip(st, run, strict=False)]):.2f} | "
                f"{median([r['rps'] for r in rst]):,.0f} | "
                f"{median([s['rps'] / r['rps'] for s, r in zip(st, rst, strict=False)]):.2f} |"
            )
    return lines


def table(results: dict[str, Any], latency_ms: float) -> str:
    """The markdown tables: medians over rounds."""
    lines: list[str] = []
    if results.get("throughput_runs"):
        lines += [
            "End to end, " + "\n".join(throughput_table(results["throughput_runs"], latency_ms))
        ]
    if results.get("cpu_runs"):
        lines += ["", "CPU-bound, " + "\n".join(throughput_table(results["cpu_runs"], 0.0))]
    starts = results.get("startup_runs", [])
    if starts:
        by_rows: dict[tuple[int, str], list[float]] = {}
        for s in starts:
            by_rows.setdefault((s["rows"], s.get("client", "runner")), []).append(
                s["first_request_s"]
            )
        lines += [
            "",
            "Exec to first request (Parquet input, simulator at 0 ms):",
            "",
            "| rows | runner | rounds | median s | min s | max s |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for (rows, label), values in sorted(by_rows.items()):
            lines.append(
                f"| {rows:,} | {label} | {len(values)} | {median(values):.2f} | "
                f"{min(values):.2f} | {max(values):.2f} |"
            )
    mem = results.get("memory_runs", [])
    if mem:
        lines += [
            "",
            "Memory, two variants, simulator at 0 ms:",
            "",
            "| rows | requests | peak RSS MB, whole run | peak RSS MB, until the last answer | "
            "first request after exec s | req/s | runner CPU s / 1k req |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in mem:
            lines.append(
                f"| {m['rows']:,} | {m['requests']:,} | {m['maxrss_mb']:.0f} | "
                f"{m['send_peak_mb']:.0f} | {m['first_request_s']:.2f} | {m['rps']:,.0f} | "
                f"{m['cpu'] / m['requests'] * 1000:.2f} |"
            )
    return "\n".join(lines)


def retable(path: Path, latency_ms: float) -> str:
    """The tables again from a saved ``results.json`` (``--table-from``)."""
    return table(json.loads(path.read_text()), latency_ms)


def compile_bytecode(root: Path) -> None:
    """Write the runner's bytecode, as ``pip install`` does: a checkout run where
    PYTHONDONTWRITEBYTECODE is set (this machine's shell sets it) would otherwise compile every
    runner module from source at each start, 0.1-0.3 s that no installed runner pays."""
    compileall.compile_dir(root / "runner", quiet=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["throughput", "cpu", "startup", "memory"])
    parser.add_argument("--quick", action="store_true", help="1 round, fewer requests")
    parser.add_argument("--runs", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--levels", default="32,128,512", help="requests in flight")
    parser.add_argument(
        "--stream-levels",
        default="32,128,512",
        help="levels also measured with --stream ('' for none)",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--seconds",
        type=float,
        default=40.0,
        help="requests per level: this many seconds at the ideal rate",
    )
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument(
        "--rows",
        default="",
        help="requests per level, comma-separated (every level runs each); overrides --seconds",
    )
    parser.add_argument(
        "--cpu-rows", type=int, default=20_000, help="requests of the 0 ms (CPU-bound) runs"
    )
    parser.add_argument("--cpu-levels", default="128", help="levels of the 0 ms runs")
    parser.add_argument("--startup-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure the runner of another checkout DIR (labelled runner@NAME), "
        "alternating with this one and the reference in every round",
    )
    parser.add_argument(
        "--sim-procs",
        type=int,
        default=1,
        help="simulator processes sharing the port (SO_REUSEPORT)",
    )
    parser.add_argument("--memory-rows", default="100000,1000000")
    parser.add_argument("--memory-concurrency", type=int, default=128)
    parser.add_argument("--table-from", type=Path, help="print the tables of a results.json")
    args = parser.parse_args(argv)  # fmt: skip
    if args.table_from:
        print(retable(args.table_from, args.latency_ms))
        return
    args.stream_levels = {int(x) for x in args.stream_levels.split(",") if x}
    args.also = {
        name: Path(path).resolve() for name, _, path in (a.partition("=") for a in args.also)
    }
    if args.quick:
        args.runs, args.seconds, args.max_requests = 1, 5.0, 10_000
        args.memory_rows = "10000,100000"
    OUT.mkdir(parents=True, exist_ok=True)
    for root in (ROOT, *args.also.values()):
        compile_bytecode(root)
    results: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join([".venv/bin/python -m bench.run", *(argv or sys.argv[1:])]),
        "latency_ms": args.latency_ms,
        "sim_procs": args.sim_procs,
    }
    print(f"machine: {results['machine']}", flush=True)
    if args.only in (None, "throughput"):
        throughput(args, results)
    if args.only in (None, "cpu"):
        cpu_args = argparse.Namespace(**vars(args))
        cpu_args.levels, cpu_args.rows = args.cpu_levels, str(args.cpu_rows)
        throughput(cpu_args, results, latency_ms=0.0, key="cpu_runs", stream_levels=set())
    if args.only in (None, "startup"):
        startup(args, results)
    if args.only in (None, "memory"):
        memory(args, results)
    text = table(results, args.latency_ms)
    (OUT / "table.md").write_text(text + "\n")
    save(results)
    print()
    print(text)


if __name__ == "__main__":
    main()
