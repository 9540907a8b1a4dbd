"""`make bench-scale`: the partitioned personal-data guardrail on the native Celery cluster, 1 worker then 2 workers.

The workload is the guardrail itself: the personal-data scan of an inference batch of ``citizen_requests``, cut
into ``BENCH_SCALE_PARTITIONS`` row ranges by ``plan_personal_data_scan``, scanned by the mapped
``scan_personal_data_partition`` tasks and merged by ``scan_personal_data`` (docs/deployment.md, "Partitioned
scale-out"). The cluster reads a copy of the policies folder in which ``citizen_requests`` has
``privacy: {scan_mode: exhaustive, partition_rows: ceil(ROWS / PARTITIONS)}``: every row is scanned (CPU-bound,
one process per task) and the batch splits into exactly that many partitions. The batch is the generated
training sample of ``BENCH_SCALE_ROWS`` rows (``scripts/cluster.py --data-rows``) without its label column,
registered (signed manifest) as the inference dataset, so the run is
``citizen_requests_inference_guardrails``, which no human answers; the whole DAG runs (kill switch,
integrity, quality and drift beside the scan, then the routing of the batch).

The same cluster code (``scripts/cluster.py``) is started with 1 Celery worker, then with 2, on fresh
PostgreSQL databases; the same batch is checked ``BENCH_SCALE_RUNS`` times on each. Printed, from the task
instances of the REST API: the median wall time of the map phase (first ``scan_personal_data_partition`` start →
last end) and of the whole run, the summed time of the partition tasks, the workers that ran them, and the
speed-up of the map phase with 2 workers over 1. Target: ≥ 1.6× on a 2-core machine. Memory, sampled every
0.2 s during one more run after the counted ones (not timed: the sampling takes CPU from the tasks): the peak
RSS of one process under a Celery worker (a task process, which shares the model its worker loaded), and the
peak of the summed PSS of all the worker processes (each shared page counted once, split between the processes
that map it). The 1-minute load average is printed at the start
(before anything is started) and at the end: the figures count only when the load at the start is below 0.5,
i.e. nothing else was using the cores; the end value includes the bench's own last minute.

Environment: ``BENCH_SCALE_ROWS`` rows of the batch (default 24000; smoke: 2000. Measured: a partition of
3,000 rows takes 1.9–3.4 s of task time depending on the day's speed of the machine, one of 500 rows about as
long, so up to this size the fixed cost of a task, not the scan, dominates; a larger size weighs the scan more),
``BENCH_SCALE_PARTITIONS`` (default 8),
``BENCH_SCALE_RUNS`` (default 2, after one warm-up run that is not counted; no warm-up when 1),
``BENCH_SCALE_TIMELINE=1`` to print, for each run, every task's worker, start and end (seconds from the first
partition's start, printed in UTC so that other records of the machine can be lined up with it): the
partitions, and the other guardrail tasks that share the workers with them. Every
process and database it creates is stopped or dropped, also on failure.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "plugins"))

from charter_demo.local_airflow import (  # noqa: E402
    AirflowRestClient,
    checkout_config_env,
    running_from_pid_dir,
    stop_pid_dir,
)
from cluster import DEFAULT_PG, drop_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "24000"))
PARTITIONS = int(os.environ.get("BENCH_SCALE_PARTITIONS", "8"))
RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "2"))
TIMELINE = os.environ.get("BENCH_SCALE_TIMELINE", "") not in ("", "0")
TARGET = 1.6
QUIET_LOAD = 0.5  # 1-minute load average under which the machine counts as otherwise idle
USE_CASE = "citizen_requests"
DAG_ID = f"{USE_CASE}_inference_guardrails"
PLAN, PARTITION, MERGE = "plan_personal_data_scan", "scan_personal_data_partition", "scan_personal_data"
BATCH = f"{USE_CASE}/inference_batch__bench.csv"  # relative to the data folder; the stem names the dataset


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _load() -> float:
    return os.getloadavg()[0]


def write_policies(target: Path) -> Path:
    """A copy of the checkout's policies folder where ``citizen_requests`` scans every row in PARTITIONS parts."""
    import yaml

    shutil.copytree(ROOT / "include" / "policies", target)
    policy = target / f"{USE_CASE}.yaml"
    raw = yaml.safe_load(policy.read_text(encoding="utf-8"))
    partition_rows = math.ceil(ROWS / PARTITIONS)
    raw["privacy"] = {**raw.get("privacy", {}), "scan_mode": "exhaustive", "partition_rows": partition_rows}
    policy.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def deliver_batch(info: dict[str, Any], env: dict[str, str]) -> None:
    """The generated training sample, without its label, as an inference batch; registered (signed manifest) so
    that the integrity step passes, as for a real delivery."""
    import pandas as pd

    data = Path(info["charter_home"]) / "data"
    frame = pd.read_csv(data / USE_CASE / "training.csv", sep=";", dtype=str, keep_default_na=False)
    if len(frame) != ROWS:
        raise RuntimeError(f"the generated sample has {len(frame)} rows, not {ROWS}")
    frame.drop(columns=["category"]).to_csv(data / BATCH, sep=";", index=False)
    charter = Path(sys.executable).parent / "charter"
    argv = [str(charter), "hash", str(data / BATCH), "--dataset", f"{USE_CASE}.inference", "--json"]
    done = subprocess.run(argv, env={**env, "CHARTER_LEDGER_URL": info["ledger_url"]}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"charter hash of the batch failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def run_once(client: AirflowRestClient) -> dict[str, Any]:
    """One run of the inference guardrails on the batch: its timings, from the task instances."""
    run_id = client.trigger(DAG_ID, {"batch_file": BATCH})
    state = client.wait_for_run(DAG_ID, run_id, timeout=1800)
    instances = client.task_instances(DAG_ID, run_id)
    single = {t["task_id"]: t for t in instances if t["map_index"] < 0}
    mapped = [t for t in instances if t["task_id"] == PARTITION]
    scan = [single.get(PLAN), *mapped, single.get(MERGE)]
    if any(t is None or t["state"] != "success" for t in scan):
        states = [(t["task_id"], t["map_index"], t["state"]) for t in instances]
        raise RuntimeError(f"{DAG_ID} ended {state} without a successful personal-data scan: {states}")
    if sorted(t["map_index"] for t in mapped) != list(range(PARTITIONS)):
        raise RuntimeError(f"expected {PARTITIONS} partitions, got map indexes {[t['map_index'] for t in mapped]}")
    every = [t for t in instances if t["start_date"] and t["end_date"]]
    first = min(_time(t["start_date"]) for t in mapped)
    map_phase = (max(_time(t["end_date"]) for t in mapped) - first).total_seconds()
    whole = (max(_time(t["end_date"]) for t in every) - min(_time(t["start_date"]) for t in every)).total_seconds()
    if TIMELINE:
        timeline(every, first)
    others = sorted(f"{t['task_id']} {t['state']}" for t in single.values() if t["state"] != "success")
    return {
        "map_phase": map_phase,
        "whole": whole,
        "busy": sum(float(t["duration"] or 0) for t in mapped),
        "plan": float(single[PLAN]["duration"] or 0),
        "merge": float(single[MERGE]["duration"] or 0),
        "hosts": sorted({_host(t) for t in mapped}),
        "state": state + (f" ({', '.join(others)})" if others else ""),
    }


def timeline(instances: list[dict[str, Any]], origin: datetime) -> None:
    """Which worker ran what, when (seconds from the first partition's start): how much the partitions
    overlapped, and which other guardrail tasks of the run took a worker during the map phase."""
    print(f"    (times from {origin.strftime('%H:%M:%S.%f')[:-5]} UTC)")
    for t in sorted(instances, key=lambda t: t["start_date"]):
        start = (_time(t["start_date"]) - origin).total_seconds()
        end = (_time(t["end_date"]) - origin).total_seconds()
        name = f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else f"({t['task_id']})"
        print(f"    {name:>34} on {_host(t)}: {start:6.1f} s → {end:6.1f} s")


def _host(instance: dict[str, Any]) -> str:
    return str(instance["hostname"]).split("@")[0]


class MemorySampler:
    """Peak memory of the Celery worker process trees of a cluster, sampled from another thread."""

    def __init__(self, state: Path, interval: float = 0.2) -> None:
        self.roots = [
            psutil.Process(pid) for name, pid in running_from_pid_dir(state).items() if name.startswith("celery-worker")
        ]
        self.interval = interval
        self.peak_rss = 0  # one process
        self.peak_pss = 0  # all the worker processes together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        pss = 0
        for root in self.roots:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    info = proc.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue  # a task process that just ended
                self.peak_rss = max(self.peak_rss, info.rss)
                pss += info.pss
        self.peak_pss = max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except psutil.NoSuchProcess:
                continue

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _print_run(workers: int, label: str, result: dict[str, Any]) -> None:
    print(
        f"  {workers} worker(s): {label}: map phase {result['map_phase']:.1f} s, whole run {result['whole']:.1f} s,"
        f" partition task time {result['busy']:.1f} s on {', '.join(result['hosts'])};"
        f" plan {result['plan']:.1f} s, merge {result['merge']:.1f} s; run {result['state']}",
        flush=True,
    )


def counted_runs(workers: int, state: Path, client: AirflowRestClient) -> tuple[list[dict[str, Any]], MemorySampler]:
    """A warm-up run (when more than one is counted), the counted runs, then one run under the memory sampler.

    The memory run is not timed: reading every worker process's ``smaps`` five times a second takes CPU from
    the tasks, which a 2-core machine running two workers does not have to spare (measured: the 2-worker map
    phase took 11.4 s in the unsampled warm-up run and 13.4 and 15.2 s in the two sampled runs after it).
    """
    client.wait_for_dag(DAG_ID, timeout=300)
    if RUNS > 1:  # a first run settles the DAG serialisation and the page cache; not counted
        _print_run(workers, "warm-up run", run_once(client))
    results = []
    for i in range(RUNS):
        results.append(run_once(client))
        _print_run(workers, f"run {i + 1}/{RUNS}", results[-1])
    with MemorySampler(state) as memory:
        _print_run(workers, "memory run (sampled, not timed)", run_once(client))
    return results, memory


def measure(
    workers: int, work: Path, policies: Path, databases: tuple[str, str]
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The counted runs' results, and the peak memory of the workers over all of them (MiB)."""
    state = work / f"cluster-{workers}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["CHARTER_HOME"] = str(work / f"charter-{workers}")
    env["CHARTER_POLICIES_DIR"] = str(policies)
    env.update({k: v for k, v in checkout_config_env(ROOT).items() if k not in env})
    cluster = [sys.executable, str(ROOT / "scripts" / "cluster.py")]
    argv = [*cluster, "start", "--workers", str(workers), "--state-dir", str(state)]
    argv += ["--charter-home", env["CHARTER_HOME"], "--metadata-db", databases[0], "--ledger-db", databases[1]]
    argv += ["--pg", DEFAULT_PG, "--data-rows", str(ROWS)]
    try:
        started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise RuntimeError(f"cluster start failed:\n{started.stdout[-2000:]}\n{started.stderr[-2000:]}")
        info = json.loads((state / "cluster.json").read_text())
        deliver_batch(info, env)
        client = AirflowRestClient(info["base_url"], "admin", info["users"]["admin"])
        try:
            results, memory = counted_runs(workers, state, client)
        finally:
            client.close()
        return results, {"peak_rss": memory.peak_rss / 2**20, "peak_pss": memory.peak_pss / 2**20}
    finally:
        stop = [*cluster, "stop", "--state-dir", str(state)]
        subprocess.run(stop, env=env, capture_output=True, timeout=120)
        stop_pid_dir(state)
        if running_from_pid_dir(state):
            raise RuntimeError(f"cluster processes still running from {state}: {running_from_pid_dir(state)}")


def report(medians: dict[int, dict[str, Any]], loads: tuple[float, float]) -> None:
    one, two = medians[1], medians[2]
    speedup = one["map_phase"] / two["map_phase"]
    rows: list[tuple[str, str, str, str]] = [
        ("map phase (median)", f"{one['map_phase']:.1f} s", f"{two['map_phase']:.1f} s", f"{speedup:.2f}x"),
        ("whole run (median)", f"{one['whole']:.1f} s", f"{two['whole']:.1f} s", f"{one['whole'] / two['whole']:.2f}x"),
        ("partition task time", f"{one['busy']:.1f} s", f"{two['busy']:.1f} s", ""),
        ("partition workers", f"{len(one['hosts'])}", f"{len(two['hosts'])}", ""),
        ("peak RSS, 1 process", f"{one['peak_rss']:.0f} MiB", f"{two['peak_rss']:.0f} MiB", ""),
        ("peak PSS, workers", f"{one['peak_pss']:.0f} MiB", f"{two['peak_pss']:.0f} MiB", ""),
    ]
    print(f"\n{'':22}{'1 worker':>12}{'2 workers':>12}{'speed-up':>10}")
    for label, a, b, ratio in rows:
        print(f"{label:22}{a:>12}{b:>12}{ratio:>10}")
    print(f"partitions ran on: {', '.join(one['hosts'])} (1 worker); {', '.join(two['hosts'])} (2 workers)")
    verdict = "meets" if speedup >= TARGET else "misses"
    start, end = loads
    counts = "the figures count" if start < QUIET_LOAD else f"the figures do NOT count (≥ {QUIET_LOAD})"
    print(f"\nspeed-up of the map phase with 2 workers: {speedup:.2f}x ({verdict} the {TARGET}x target)")
    print(
        f"load average (1 min): {start:.2f} at start, {end:.2f} at end (the end includes this bench's own last"
        f" minute); {counts}"
    )


def main() -> int:
    load_start = _load()
    suffix = uuid.uuid4().hex[:8]
    print(
        f"bench-scale: {DAG_ID}, personal-data scan of {ROWS} rows in {PARTITIONS} partitions (exhaustive),"
        f" {RUNS} run(s) per setting, {os.cpu_count()} cores on {socket.gethostname()};"
        f" load average (1 min) {load_start:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        policies = write_policies(work / "policies")
        medians: dict[int, dict[str, Any]] = {}
        for workers in (1, 2):
            databases = (f"charter_bench_airflow_{suffix}_{workers}", f"charter_bench_ledger_{suffix}_{workers}")
            started = time.monotonic()
            try:
                results, peaks = measure(workers, work, policies, databases)
            finally:
                for name in databases:
                    drop_database(DEFAULT_PG, name)
            medians[workers] = {
                key: statistics.median(r[key] for r in results) for key in ("map_phase", "whole", "busy")
            } | peaks
            medians[workers]["hosts"] = sorted({h for r in results for h in r["hosts"]})
            print(f"  {workers} worker(s) done in {time.monotonic() - started:.0f} s", flush=True)
    report(medians, (load_start, _load()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
