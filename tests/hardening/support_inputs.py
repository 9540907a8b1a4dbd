"""Helpers of the hardening tests: the campaign size, the bad-input corpus, peak-memory probes, and a
harness that sends each bad input through the project's entry points in one child process.

The harness runs as ``python tests/hardening/support_inputs.py SPEC.json RESULTS.json``: a fresh process,
so that what one input costs is measured from a known state. Heavy imports (pandas, Presidio, spaCy,
Great Expectations) are paid once in a warm-up on the control file; then, for each input and each entry
point, the peak RSS is reset (``/proc/self/clear_refs``), the call runs under a time limit, and the
harness records the outcome, the exit code, the message, the seconds, the peak memory above the
baseline, and the ledger rows the call added. A watchdog thread ends the child if its RSS passes a
hard cap, so a runaway input cannot take the shared machine down with it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS_SCRIPT = ROOT / "scripts" / "make_bad_corpus.py"
POLICY = ROOT / "include" / "policies" / "citizen_requests.yaml"


def full_scale() -> bool:
    """``make hardening`` sets HARDENING_SCALE=full; ``make test`` runs the CI size."""
    return os.environ.get("HARDENING_SCALE", "").lower() == "full"


@functools.cache
def corpus() -> ModuleType:
    """``scripts/make_bad_corpus.py`` as a module (``scripts`` is not a package)."""
    spec = importlib.util.spec_from_file_location("make_bad_corpus", CORPUS_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# memory probes (Linux): VmHWM is the peak RSS, and writing 5 to clear_refs resets it


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def peak_mib() -> float:
    return _status_kib("VmHWM") / 1024


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


# ------------------------------------------------------------------------------------------------
# the child: entry points


class CallTimeout(BaseException):
    """Raised by the alarm; a BaseException, so that ``except Exception`` in the code under test cannot swallow it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise CallTimeout()


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``charter ARGV`` in this process: (exit code, stdout, stderr). An exception escaping ``main`` propagates."""
    from charter_guardrails.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def ledger_counts() -> dict[str, int]:
    from charter_guardrails.ledger.db import get_engine
    from charter_guardrails.ledger.models import Base
    from sqlalchemy import func, select

    with get_engine().connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in Base.metadata.tables.items()
        }


def chain_ok() -> bool:
    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        return verify_chain(session).ok


def _cli_outcome(code: int, out: str, err: str) -> dict[str, Any]:
    outcome = {0: "ok", 1: "fail", 2: "error"}.get(code, f"exit {code}")
    try:
        document = json.loads(out)
    except ValueError:
        document = None
    summary = (
        {k: document[k] for k in ("check", "verdict", "summary", "outcome", "ok") if k in document}
        if isinstance(document, dict)
        else None
    )
    return {"outcome": outcome, "exit": code, "message": err.strip()[:4000], "stdout": out[:200_000], "json": summary}


def entry_point(name: str, case: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    path, run = case["path"], f"bad__{case['name']}"
    policy, control = spec["policy"], spec["control"]
    if name == "reader":
        from charter_guardrails.core.errors import DatasetReadError
        from charter_guardrails.core.policy import UseCasePolicy
        from charter_guardrails.readers.files import read_dataset

        dataset = UseCasePolicy.from_file(policy).dataset("training")
        try:
            frame = read_dataset(dataset, Path(path))
        except DatasetReadError as exc:
            return {"outcome": "error", "kind": exc.kind, "message": str(exc)}
        return {
            "outcome": "ok",
            "rows": len(frame),
            "columns": [str(c) for c in frame.columns[:10]],
            "width": len(frame.columns),
        }
    if name == "suite":
        from charter_guardrails.checks.quality.suites import load_suite
        from charter_guardrails.core.errors import SuiteError

        try:
            loaded = load_suite(path)
        except SuiteError as exc:
            return {"outcome": "error", "kind": "suite", "message": str(exc)}
        return {"outcome": "ok", "expectations": len(loaded.expectations)}
    argv = {
        "scan": ["scan", path, "--policy", policy, "--dataset", "training", "--run-id", run, "--json"],
        "hash": ["hash", path, "--dataset", "citizen_requests.training", "--run-id", run, "--json"],
        "verify": ["verify", path, "--dataset", "citizen_requests.training", "--run-id", run + "__verify", "--json"],
        "pseudonymise": [
            "pseudonymise",
            path,
            case.get("output", ""),
            "--policy",
            policy,
            "--dataset",
            "training",
            "--json",
        ],
        "validate": ["validate", path, "--policy", policy, "--dataset", "training", "--run-id", run, "--json"],
        "policy": ["policy", "validate", path],
        "policy_scan": ["scan", control, "--policy", path, "--dataset", "training", "--run-id", run, "--json"],
        "policy_quality": ["validate", control, "--policy", path, "--dataset", "training", "--run-id", run, "--json"],
        "suite_quality": [
            "validate",
            control,
            "--policy",
            policy,
            "--dataset",
            "training",
            "--suite",
            path,
            "--run-id",
            run,
            "--json",
        ],
    }[name]
    result = _cli_outcome(*run_cli(argv))
    if name == "pseudonymise":
        output = Path(case["output"])
        result["output_exists"] = output.exists()
        from charter_guardrails.checks.privacy.pseudonymise import COPY_RECORD_SUFFIX

        record = output.with_name(output.name + COPY_RECORD_SUFFIX)  # the copy's key derivation, beside a CSV
        result["record_exists"] = record.exists()
        result["leftovers"] = sorted(p.name for p in output.parent.glob(output.name + "*") if p not in (output, record))
    return result


def measured(name: str, case: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """One entry point on one input: outcome, seconds, peak memory above the baseline, ledger rows added."""
    before = ledger_counts()
    reset_peak()
    baseline = rss_mib()
    signal.alarm(int(spec["time_limit"]))
    started = time.perf_counter()
    try:
        result = entry_point(name, case, spec)
    except CallTimeout:
        result = {"outcome": "timeout", "message": f"no answer within {spec['time_limit']} s"}
    except Exception as exc:  # noqa: BLE001 - an unhandled error is what the campaign looks for
        result = {
            "outcome": "unhandled",
            "message": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-4000:],
        }
    finally:
        signal.alarm(0)
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["peak_mib"] = round(max(peak_mib() - baseline, 0.0), 1)
    after = ledger_counts()
    result["rows_added"] = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    return result


def _watchdog(cap_mib: float, results_path: Path, results: dict[str, Any]) -> None:
    while True:
        time.sleep(0.05)
        if rss_mib() > cap_mib:
            results["killed"] = f"RSS above the hard cap of {cap_mib:.0f} MiB while running {results.get('running')}"
            results_path.write_text(json.dumps(results, indent=1))
            os._exit(3)


def child(spec_path: Path, results_path: Path) -> int:
    spec = json.loads(spec_path.read_text())
    from charter_guardrails.core.keys import init_keys
    from charter_guardrails.ledger import db

    init_keys()
    db.migrate()
    signal.signal(signal.SIGALRM, _alarm)
    results: dict[str, Any] = {"cases": {}, "warmup": {}}
    threading.Thread(target=_watchdog, args=(spec["hard_cap_mib"], results_path, results), daemon=True).start()
    warm = {"name": "warmup", "path": spec["control"], "output": str(Path(spec["out_dir"]) / "warmup.csv")}
    for name in spec["warmup"]:
        results["running"] = f"warm-up {name}"
        results["warmup"][name] = measured(name, warm, spec)
    results["baseline_rss_mib"] = round(rss_mib(), 1)
    for case in spec["cases"]:
        path = Path(case["path"])
        record: dict[str, Any] = {"sha256_before": sha256_file(path), "calls": {}}
        results["cases"][case["name"]] = record
        for name in case["entry_points"]:
            if name == "verify" and record["calls"].get("hash", {}).get("outcome") != "ok":
                continue  # nothing registered to verify against
            results["running"] = f"{case['name']} {name}"
            record["calls"][name] = measured(name, case, spec)
            results_path.write_text(json.dumps(results, indent=1))
        record["sha256_after"] = sha256_file(path)
        record["chain_ok"] = chain_ok()
        results_path.write_text(json.dumps(results, indent=1))
    results.pop("running", None)
    results["done"] = True
    results_path.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(child(Path(sys.argv[1]), Path(sys.argv[2])))
