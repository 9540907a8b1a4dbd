"""`make bench-scale`: the partitioned scan on the native Celery cluster, 1 worker then 2 workers.

8 partitions of CPU-bound work (Merkle hashing and an exhaustive personal data scan of distinct
free-text rows) run as mapped tasks of ``partitioned_scan``. The same cluster code
(``scripts/cluster.py``) is started with 1 Celery worker, then with 2, on fresh PostgreSQL
databases; the same data and DAG run ``BENCH_SCALE_RUNS`` times on each. Printed: the median
wall time of the map phase (first mapped task start → last mapped task end) and of the whole run,
and the speed-up of 2 workers over 1. Target: ≥ 1.6× on a 2-core machine. Memory, sampled every
0.2 s during the counted runs: the peak RSS of one process under a Celery worker (a task process,
which shares the model its worker loaded), and the peak of the summed PSS of all the worker
processes (each shared page counted once, split between the processes that map it).

Sizes (environment): ``BENCH_SCALE_ROWS`` rows in all (default 24000: below that, the fixed cost of a task
process dominates; smoke: 800), ``BENCH_SCALE_PARTITIONS`` (default 8), ``BENCH_SCALE_RUNS`` (default 2,
after one warm-up run that is not counted; no warm-up when 1). Every process and database it creates is
stopped or dropped, also on failure.
"""

from __future__ import annotations

import json
import os
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

from charter_demo.local_airflow import AirflowRestClient, running_from_pid_dir, stop_pid_dir  # noqa: E402
from cluster import DEFAULT_PG, drop_database  # noqa: E402

ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "24000"))
PARTITIONS = int(os.environ.get("BENCH_SCALE_PARTITIONS", "8"))
RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "2"))
TARGET = 1.6
DAG_ID = "partitioned_scan"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_once(client: AirflowRestClient) -> dict[str, float]:
    run_id = client.trigger(DAG_ID, {"directory": "citizen_requests/bench_partitions"})
    state = client.wait_for_run(DAG_ID, run_id, timeout=1800)
    instances = client.task_instances(DAG_ID, run_id)
    if state != "success":
        raise RuntimeError(f"{DAG_ID} ended {state}: {[(t['task_id'], t['map_index'], t['state']) for t in instances]}")
    mapped = [t for t in instances if t["map_index"] >= 0]
    if len(mapped) != 2 * PARTITIONS:
        raise RuntimeError(f"expected {2 * PARTITIONS} mapped task instances, got {len(mapped)}")
    every = [t for t in instances if t["start_date"] and t["end_date"]]
    map_phase = (
        max(_time(t["end_date"]) for t in mapped) - min(_time(t["start_date"]) for t in mapped)
    ).total_seconds()
    whole = (max(_time(t["end_date"]) for t in every) - min(_time(t["start_date"]) for t in every)).total_seconds()
    busy = sum(float(t["duration"] or 0) for t in mapped)
    hosts = sorted({t["hostname"] for t in mapped})
    if os.environ.get("BENCH_SCALE_TIMELINE"):  # which worker ran what, when: to see how much the tasks overlapped
        origin = min(_time(t["start_date"]) for t in mapped)
        for t in sorted(mapped, key=lambda t: t["start_date"]):
            start = (_time(t["start_date"]) - origin).total_seconds()
            end = start + float(t["duration"] or 0)
            host = t["hostname"].split("@")[0]
            print(f"    {t['task_id']:>15}[{t['map_index']}] on {host}: {start:6.1f} s → {end:6.1f} s")
    return {"map_phase": map_phase, "whole": whole, "busy": busy, "hosts": len(hosts)}


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


def measure(workers: int, work: Path, databases: tuple[str, str]) -> tuple[list[dict[str, float]], dict[str, float]]:
    """The counted runs' results, and the peak memory of the workers over all of them (MiB)."""
    state = work / f"cluster-{workers}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["CHARTER_HOME"] = str(work / "charter")
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "cluster.py"),
        "start",
        "--workers",
        str(workers),
        "--state-dir",
        str(state),
        "--charter-home",
        env["CHARTER_HOME"],
        "--metadata-db",
        databases[0],
        "--ledger-db",
        databases[1],
        "--pg",
        DEFAULT_PG,
        "--data-rows",
        str(ROWS),
    ]
    try:
        started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise RuntimeError(f"cluster start failed:\n{started.stdout[-2000:]}\n{started.stderr[-2000:]}")
        info = json.loads((state / "cluster.json").read_text())
        _prepare_partitions(Path(info["charter_home"]))
        client = AirflowRestClient(info["base_url"], "admin", info["users"]["admin"])
        try:
            client.wait_for_dag(DAG_ID, timeout=300)
            if RUNS > 1:  # a first run settles the DAG serialisation and the page cache; not counted
                warm = run_once(client)
                print(f"  {workers} worker(s): warm-up run {warm['map_phase']:.1f} s", flush=True)
            results = []
            with MemorySampler(state) as memory:
                for i in range(RUNS):
                    result = run_once(client)
                    results.append(result)
                    print(
                        f"  {workers} worker(s): run {i + 1}/{RUNS}: map phase {result['map_phase']:.1f} s,"
                        f" whole run {result['whole']:.1f} s, "
                        f"task time {result['busy']:.1f} s on {result['hosts']:.0f} worker(s)",
                        flush=True,
                    )
            return results, {"peak_rss": memory.peak_rss / 2**20, "peak_pss": memory.peak_pss / 2**20}
        finally:
            client.close()
    finally:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "cluster.py"), "stop", "--state-dir", str(state)],
            env=env,
            capture_output=True,
            timeout=120,
        )
        stop_pid_dir(state)
        assert not running_from_pid_dir(state)


def _prepare_partitions(home: Path) -> None:
    from charter_airflow.partitions import write_partitions

    target = home / "data" / "citizen_requests" / "bench_partitions"
    if not target.exists():
        write_partitions(home / "data" / "citizen_requests" / "training.csv", target, PARTITIONS)


def main() -> int:
    suffix = uuid.uuid4().hex[:8]
    print(
        f"bench-scale: {PARTITIONS} partitions, {ROWS} rows, {RUNS} run(s) per setting,"
        f" {os.cpu_count()} cores on {socket.gethostname()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        medians: dict[int, dict[str, float]] = {}
        for workers in (1, 2):
            databases = (f"charter_bench_airflow_{suffix}_{workers}", f"charter_bench_ledger_{suffix}_{workers}")
            started = time.monotonic()
            try:
                results, peaks = measure(workers, work, databases)
            finally:
                for name in databases:
                    drop_database(DEFAULT_PG, name)
            medians[workers] = {
                key: statistics.median(r[key] for r in results) for key in ("map_phase", "whole", "busy")
            } | peaks
            print(f"  {workers} worker(s) done in {time.monotonic() - started:.0f} s", flush=True)
    one, two = medians[1], medians[2]
    speedup = one["map_phase"] / two["map_phase"]
    rows: list[tuple[str, Any, Any, str]] = [
        ("map phase (median)", f"{one['map_phase']:.1f} s", f"{two['map_phase']:.1f} s", f"{speedup:.2f}x"),
        ("whole run (median)", f"{one['whole']:.1f} s", f"{two['whole']:.1f} s", f"{one['whole'] / two['whole']:.2f}x"),
        ("task time, summed", f"{one['busy']:.1f} s", f"{two['busy']:.1f} s", ""),
        ("peak RSS, 1 process", f"{one['peak_rss']:.0f} MiB", f"{two['peak_rss']:.0f} MiB", ""),
        ("peak PSS, workers", f"{one['peak_pss']:.0f} MiB", f"{two['peak_pss']:.0f} MiB", ""),
    ]
    print(f"\n{'':22}{'1 worker':>12}{'2 workers':>12}{'speed-up':>10}")
    for label, a, b, ratio in rows:
        print(f"{label:22}{a:>12}{b:>12}{ratio:>10}")
    verdict = "meets" if speedup >= TARGET else "misses"
    print(f"\nspeed-up of the map phase with 2 workers: {speedup:.2f}x ({verdict} the {TARGET}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
